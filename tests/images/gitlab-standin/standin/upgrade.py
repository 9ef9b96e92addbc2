"""What an upgrade meets: the required-stop check at boot, the database migrations of
reconfigure, and the batched background migrations (BBMs) they leave to sidekiq.

Sources (omnibus-gitlab at 440b1f835eb2, GitLab's docs; see README.md):
- docker/assets/init-container: with /var/opt/gitlab/gitlab-rails/VERSION present, it runs
  `gitlab-ctl upgrade-check OLD NEW` under `set -e`;
- files/gitlab-ctl-commands/upgrade-check.rb and lib/gitlab_ctl/upgrade_check.rb: the old
  version's major.minor must be at least MIN_VERSION (ENV['MIN_VERSION'] or the image's
  own: '18.5' in 18.8.x, '18.8' in 18.11.x, '18.11' in 19.0.x to 19.2.x, '19.2' in 19.3);
- doc/update/background_migrations.md: status NOT IN (3, 6) is unfinished; a migration of
  the next stop fails while one is, with "Expected batched background migration for the
  given configuration to be marked as 'finished', but it is '<status>'".
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from standin import common
from standin.common import event

# Gitlab::Database::BackgroundMigration::BatchedMigration's state machine.
STATUS_NAMES = {
    0: "paused",
    1: "active",
    3: "finished",
    4: "failed",
    5: "finalizing",
    6: "finalized",
}
DONE = (3, 6)
STOP_MINORS = (2, 5, 8, 11)  # required stops since 17.5: x.2, x.5, x.8, x.11
# Each upgrade's migrations queue these (what 18.x upgrades really queue, by name).
QUEUED = (
    ("BackfillProjectNamespaceOnIssues", "issues", "id"),
    ("DeleteOrphanedCiRunnerMachineRecords", "ci_runner_machines", "id"),
)


def parse(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3])


def min_version(image_version: str) -> str:
    """The image's MIN_VERSION: the last required stop before its own minor."""
    if os.environ.get("MIN_VERSION"):
        return os.environ["MIN_VERSION"]
    major, minor = parse(image_version)[:2]
    earlier = [m for m in STOP_MINORS if m < minor]
    return f"{major}.{earlier[-1]}" if earlier else f"{major - 1}.{STOP_MINORS[-1]}"


def upgrade_check(old: str, new: str) -> bool:
    """`gitlab-ctl upgrade-check OLD NEW`: print GitLab's lines and return False when
    OLD is below NEW's minimum (compared as integers, as upgrade_check.rb does now)."""
    floor = min_version(new)
    if parse(old)[:2] >= parse(floor)[:2]:
        return True
    major_upgrade = parse(new)[0] > parse(old)[0]
    print(f"It seems you are upgrading from {old} to {new}.", file=sys.stderr)
    print(
        f"It is required to upgrade to the latest {floor}.x version first before proceeding.",
        file=sys.stderr,
    )
    page = "#upgrading-to-a-new-major-version" if major_upgrade else "#upgrade-paths"
    print(
        f"Please follow the upgrade documentation at https://docs.gitlab.com/ee/update/{page}",
        file=sys.stderr,
    )
    return False


def data_version() -> str | None:
    try:
        with open(common.DATA_VERSION) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def refuse_newer_schema(db: dict[str, Any]) -> None:
    """An older GitLab on a newer (or half-migrated) database does not start. Real GitLab's
    behaviour here is not documented; the double does the harsher thing."""
    schema = db.get("schema_version")
    if schema and parse(schema) > parse(common.version()):
        raise common.ConfigError(
            f"the database schema is of GitLab {schema}, newer than this GitLab "
            f"({common.version()}): restore a backup made on {common.version()} instead"
        )


def unfinished(db: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in db.get("batched_background_migrations", []) if m["status"] not in DONE]


def migrate(old: str) -> None:
    """reconfigure's db:migrate from ``old`` (the version the database was last migrated
    to) to this image's version: refused while a BBM is unfinished; takes
    ``migrate_seconds``; with ``migration_fail`` it stops half-way (the schema is then the
    new version's, and the next reconfigure runs the migrations again), and with
    ``migration_fail_to`` set to this image's version only for it."""
    new = common.version()
    with common.database() as db:
        refuse_newer_schema(db)
        pending = unfinished(db)
    if pending:
        first = pending[0]
        raise common.ConfigError(
            "rake aborted! Expected batched background migration for the given "
            "configuration to be marked as 'finished', but it is "
            f"'{STATUS_NAMES[first['status']]}': {{:job_class_name=>\"{first['job_class_name']}\", "
            f':table_name=>"{first["table_name"]}", :column_name=>"{first["column_name"]}", '
            f":job_arguments=>{first['job_arguments']}}}"
        )
    event("migrations", f"start {old} -> {new}")
    time.sleep(common.switch("migrate_seconds", 1))
    failing = (
        bool(common.switch("migration_fail", 0)) or common.switch_text("migration_fail_to") == new
    )
    with common.database(write=True) as db:
        db["schema_version"] = new  # the schema moves first, also when a later step fails
        if not failing:
            db["migrated_to"] = new
            rows = db.setdefault("batched_background_migrations", [])
            for job_class, table, column in QUEUED:
                rows.append(
                    {
                        "id": len(rows) + 1,
                        "job_class_name": f"{job_class}V{new.replace('.', '')}",
                        "table_name": table,
                        "column_name": column,
                        "job_arguments": "[]",
                        "status": 1,
                        "queued_at": time.time(),
                        "version": new,
                    }
                )
    if failing:
        event("migrations", f"failed half-way {old} -> {new}")
        raise common.ConfigError(
            "rake aborted! StandardError: An error has occurred, all later migrations "
            "canceled (the database is partially migrated)"
        )
    event("migrations", f"done {old} -> {new}: {len(QUEUED)} batched background migrations queued")


def advance() -> None:
    """sidekiq's work: an active BBM ends ``bbm_seconds`` after it was queued, finished,
    or failed with the ``bbm_fail`` switch. Nothing moves while sidekiq is stopped."""
    if not common.database_exists():
        return
    with common.database() as db:
        if not any(m["status"] == 1 for m in db.get("batched_background_migrations", [])):
            return
    wait, fail = common.switch("bbm_seconds", 5), common.switch("bbm_fail", 0)
    with common.database(write=True) as db:
        for row in db.get("batched_background_migrations", []):
            if row["status"] == 1 and time.time() - row["queued_at"] >= wait:
                row["status"] = 4 if fail else 3
                event(
                    "sidekiq",
                    f"batched background migration {row['id']} {STATUS_NAMES[row['status']]}",
                )


def status_lines() -> list[str]:
    """`gitlab-rake gitlab:background_migrations:status` (display_migration_status)."""
    with common.database() as db:
        rows = db.get("batched_background_migrations", [])
    lines = ["Database: main"]
    for m in rows:
        ident = ",".join(
            (m["job_class_name"], m["table_name"], m["column_name"], m["job_arguments"])
        )
        lines.append(f"{STATUS_NAMES[m['status']]:<10} | {ident}")
    return lines


def progress(row: dict[str, Any]) -> float:
    if row["status"] in DONE:
        return 100.0
    wait = common.switch("bbm_seconds", 5) or 1
    return min(99.0, round(100 * (time.time() - row["queued_at"]) / wait, 1))

"""`girofle upgrade`: an instance moved along GitLab's required stops, one hop at a time.

Each hop: a verified backup, the stack re-rendered on the hop's image and applied (Compose
stops the old container before it starts the new one, so two GitLabs never share a data
directory), healthy, the version checked, background migrations waited for, the hop
journalled in the inventory. A killed upgrade, rerun, resumes at its hop. A hop that does
not boot is undone by restoring the backup taken before it on the version before it (or,
with --rollback-on-failure, the first backup on the starting version); the failed data is
set aside, never deleted.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from girofle.backup.instance import backup_instance, backups_dir, list_backups
from girofle.backup.manifest import verify
from girofle.backup.restore import doctor_failures, restore_instance
from girofle.errors import GirofleError, HealthTimeoutError, UpgradeError, UserError
from girofle.inventory import (
    Instance,
    RestoreRecord,
    UpgradeRecord,
    editing,
    now,
    read_inventory,
)
from girofle.lifecycle import converge, validate
from girofle.lifecycle.app import App
from girofle.lifecycle.plan import write_files
from girofle.render import model
from girofle.targets import compose_only
from girofle.upgrade.path import UpgradePaths, image_for, image_version, parse_version, show

# The query doc/update/background_migrations.md gives (zero rows: all finished), with the
# status column added so that a failed migration stops the wait at once.
BBM_QUERY = (
    "SELECT job_class_name, table_name, column_name, job_arguments, status "
    "FROM batched_background_migrations WHERE status NOT IN (3, 6);"
)
BBM_FAILED = "4"
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Hop:
    version: str
    image: str


@dataclass(frozen=True)
class UpgradePlan:
    name: str
    current: str
    target: str
    hops: list[Hop]
    last_backup_bytes: int | None


@dataclass(frozen=True)
class UpgradeReport:
    name: str
    started_on: str
    version: str
    hops_done: int
    backups: list[str]


def plan_upgrade(app: App, name: str, target: str, paths: UpgradePaths) -> UpgradePlan:
    """What an upgrade of ``name`` to ``target`` would do; reads, changes nothing."""
    inventory = read_inventory(app.home)
    instance = inventory.get(validate.instance_name(name))
    compose_only(app.config, "upgrading an instance")
    if instance.state == "decommissioned":
        raise UserError(f"instance {name!r} is decommissioned: there is nothing to upgrade")
    record = inventory.upgrades.get(name)
    start = record.start_image if record else instance.image
    current = image_version(start)
    versions = (
        record.path if record else [show(v) for v in paths.plan(current, parse_version(target))]
    )
    if record and record.target != show(parse_version(target)):
        raise UserError(
            f"{name} has an unfinished upgrade to {record.target}: finish it first "
            f"(`girofle upgrade {name} --to {record.target}`)"
        )
    hops = [Hop(v, image_for(start, parse_version(v))) for v in versions]
    backups = list_backups(app, name)
    # The last backup's size, from its manifest (which lists every file's size).
    size = sum(f.size for f in backups[-1].manifest.files) if backups else None
    return UpgradePlan(name, show(current), show(parse_version(target)), hops, size)


def _save(app: App, name: str, record: UpgradeRecord | None) -> None:
    with editing(app.home) as inventory:
        if record is None:
            inventory.upgrades.pop(name, None)
        else:
            inventory.upgrades[name] = record


def preflight(app: App, plan: UpgradePlan) -> None:
    """Everything checked before anything changes; each failure is one line."""
    name, container = plan.name, app.target.container(plan.name)
    missing = [h.image for h in plan.hops if not app.engine.has_image(h.image)]
    if missing:
        raise UserError(
            f"{name}: this engine does not have {', '.join(missing)}; Girofle does not pull "
            "in the middle of an upgrade: `docker pull` first"
        )
    if app.engine.health(container).status != "healthy":
        raise UserError(f"{name} is not healthy: upgrade only a healthy instance")
    running = converge.running_version(app, name)
    if running != plan.current:
        raise UserError(f"{name} runs GitLab {running}, not {plan.current} as its image says")
    pending = unfinished_migrations(app, container)
    if pending:
        raise UserError(
            f"{name} has {len(pending)} batched background migration(s) unfinished "
            f"({pending[0]['job_class_name']} first): let them finish before upgrading"
        )
    doctor = ["gitlab-rake", "gitlab:doctor:secrets"]
    timeout = app.config.backups.doctor_timeout
    failures = doctor_failures(app.engine.exec(container, doctor, timeout=timeout))
    if failures:
        raise UserError(f"{name}: gitlab:doctor:secrets cannot decrypt {', '.join(failures)}")
    if plan.last_backup_bytes is not None:
        directory = backups_dir(app, name)
        free = shutil.disk_usage(directory).free
        needed = 2 * plan.last_backup_bytes
        if free < needed:
            raise UserError(
                f"{name}: {directory} has {free // 2**20} MiB free; a backup before each hop "
                f"needs about {needed // 2**20} MiB (twice the last backup)"
            )


def unfinished_migrations(app: App, container: str) -> list[dict[str, str]]:
    """Rows of the documented query: batched background migrations not yet finished."""
    output = app.engine.exec(container, ["gitlab-psql", "-c", BBM_QUERY])
    lines = [line for line in output.splitlines() if line.strip()]  # psql ends on a blank
    if len(lines) < 3 or not lines[-1].startswith("("):
        raise UpgradeError(f"gitlab-psql answered what Girofle cannot read: {output[:200]!r}")
    columns = [c.strip() for c in lines[0].split("|")]
    return [
        dict(zip(columns, (v.strip() for v in row.split("|")), strict=False)) for row in lines[2:-1]
    ]


def wait_background_migrations(app: App, name: str, timeout: float) -> None:
    """Until the documented query returns no row, with progress; a failed migration or the
    timeout stops the wait (the instance runs on meanwhile)."""
    container = app.target.container(name)
    started = time.monotonic()
    said = -60.0
    while True:
        rows = unfinished_migrations(app, container)
        failed = [r for r in rows if r.get("status") == BBM_FAILED]
        if failed:
            row = failed[0]
            arguments = ",".join(row[k] for k in ("job_class_name", "table_name", "column_name"))
            raise UpgradeError(
                f"{name}: batched background migration {row['job_class_name']} failed; retry it "
                "in Admin > Monitoring > Background migrations, or run `gitlab-rake "
                f"gitlab:background_migrations:finalize[{arguments},'{row['job_arguments']}']`"
            )
        elapsed = time.monotonic() - started
        if not rows:
            app.progress(f"{name}: background migrations finished ({elapsed:.0f} s)")
            return
        if elapsed >= timeout:
            raise UpgradeError(
                f"{name}: {len(rows)} batched background migration(s) still unfinished after "
                f"{elapsed:.0f} s; rerun the upgrade to wait on (GitLab says they can take days)"
            )
        if elapsed - said >= 30:
            app.progress(
                f"{name}: waiting for {len(rows)} batched background migration(s) "
                f"({elapsed:.0f} s so far, up to {timeout:.0f} s)"
            )
            said = elapsed
        time.sleep(POLL_SECONDS)


def _apply_hop(app: App, name: str, image: str) -> None:
    """The stack re-rendered on ``image`` and applied: Compose stops the old container,
    then creates and starts the new one on the same data."""
    with app.home.lock(f"instance-{name}", wait=False):
        with editing(app.home) as inventory:
            current = inventory.get(name)
            inventory.instances[name] = current.model_copy(update={"image": image})
        instance = read_inventory(app.home).get(name)
        write_files(
            app.home.stack_dir(name), app.target.render_instance(converge.spec_of(app, instance))
        )
        app.progress(f"{name}: replacing its container with one on {image}")
        app.target.apply(name)


def _wait_booted(app: App, name: str, version: str) -> None:
    """Healthy (a crash while starting, such as a refused upgrade-check or a failed
    migration, stops the wait at once), then on ``version``. Healthy means migrated: the
    boot's reconfigure starts puma only after its database_migrations recipe passed
    (omnibus recipes/default.rb)."""
    timeout = app.config.gitlab.health_timeout
    app.progress(f"{name}: waiting until GitLab {version} is healthy (up to {timeout:.0f} s)")
    app.target.wait_healthy(
        name,
        timeout,
        on_change=lambda status, elapsed: app.progress(f"{name}: {status} after {elapsed:.0f} s"),
        stop_on_crash=True,
    )
    running = converge.running_version(app, name)
    if running != version:
        raise UpgradeError(f"{name} runs GitLab {running} after the hop, not {version}")


def _set_aside(app: App, name: str) -> Path:
    """Move the instance's volumes out of the way (kept for a post-mortem, not deleted)."""
    paths = model.InstancePaths.of(app.config.data_root, name)
    volumes = paths.config.parent
    aside = paths.root / f"upgrade-failed-{now().strftime('%Y%m%dT%H%M%SZ')}"
    if volumes.exists():
        volumes.rename(aside)
    return aside


def roll_back(app: App, name: str, image: str, backup_id: str) -> Path:
    """``name`` commissioned anew on ``image`` and ``backup_id`` restored onto it; the
    failed volumes are set aside. Goes through restore's journal: a killed rollback is
    finished by the restore command `girofle ls` shows."""
    app.progress(f"{name}: rolling back: restoring {backup_id} on {image}")
    with app.home.lock(f"instance-{name}", wait=False):
        app.target.remove(name)
        aside = _set_aside(app, name)
        with editing(app.home) as inventory:
            instance = inventory.get(name)
            inventory.instances[name] = Instance.model_validate(
                instance.model_copy(
                    update={"image": image, "state": "creating", "version": None}
                ).model_dump()
            )
            # The restore resumes onto an instance it commissions itself ("fresh").
            inventory.restores[name] = RestoreRecord(
                source=name, backup_id=backup_id, fresh=True, started_at=now(), pid=os.getpid()
            )
    restore_instance(app, name, backup_id)
    return aside


def _fail(
    app: App,
    record: UpgradeRecord,
    name: str,
    index: int,
    err: GirofleError,
    rollback: bool,
    booted: bool,
) -> UpgradeError:
    """Record the failure; undo what must be undone; the error to raise."""
    record = record.model_copy(update={"failed": str(err)})
    _save(app, name, record)
    hop = f"hop {index + 1} of {len(record.path)} (to {record.path[index]})"
    if not rollback and booted:
        return UpgradeError(
            f"{name}: the upgrade stopped at {hop}: {err}; it runs on {record.path[index]}. "
            f"Rerun the upgrade to go on, or add --rollback-on-failure to go back"
        )
    if rollback:
        image, backup_id = record.start_image, record.backups[0]
    else:  # the hop did not boot: back to the version before it, with its data
        before = record.path[index - 1] if index else show(image_version(record.start_image))
        image, backup_id = (
            image_for(record.start_image, parse_version(before)),
            record.backups[index],
        )
    aside = roll_back(app, name, image, backup_id)
    _save(app, name, None)
    return UpgradeError(
        f"{name}: the upgrade failed at {hop}: {err}; {name} is back on {image} with the data "
        f"of backup {backup_id} (the failed volumes are kept in {aside})"
    )


def _hop(
    app: App, name: str, record: UpgradeRecord, index: int, rollback: bool, timeout: float
) -> UpgradeRecord:
    version = record.path[index]
    image = image_for(record.start_image, parse_version(version))
    app.progress(f"{name}: hop {index + 1} of {len(record.path)}: to GitLab {version}")
    try:
        if len(record.backups) <= index:
            app.progress(f"{name}: backing up before the hop")
            ref = backup_instance(app, name)
            verify(ref.path)
            record = record.model_copy(update={"backups": [*record.backups, ref.backup_id]})
            _save(app, name, record)
        _apply_hop(app, name, image)
        _wait_booted(app, name, version)
    except (HealthTimeoutError, UpgradeError) as err:
        raise _fail(app, record, name, index, err, rollback, booted=False) from None
    try:
        wait_background_migrations(app, name, timeout)
    except UpgradeError as err:
        raise _fail(app, record, name, index, err, rollback, booted=True) from None
    record = record.model_copy(update={"done": index + 1, "failed": None})
    with editing(app.home) as inventory:
        inventory.upgrades[name] = record
        instance = inventory.get(name)
        inventory.instances[name] = instance.model_copy(
            update={"version": version, "state": "running"}
        )
    app.progress(f"{name}: on GitLab {version}")
    return record


def upgrade_instance(
    app: App,
    name: str,
    target: str,
    paths: UpgradePaths,
    rollback: bool = False,
    timeout: float = 48 * 3600,
) -> UpgradeReport:
    """Upgrade ``name`` to ``target`` along the required stops (or resume that upgrade)."""
    plan = plan_upgrade(app, name, target, paths)
    app.engine.ping()
    with app.home.lock(f"upgrade-{name}", wait=False):
        record = read_inventory(app.home).upgrades.get(name)
        if record is None:
            if not plan.hops:
                return UpgradeReport(name, plan.current, plan.current, 0, [])
            preflight(app, plan)
            record = UpgradeRecord(
                target=plan.target,
                path=[h.version for h in plan.hops],
                start_image=read_inventory(app.home).get(name).image,
                started_at=now(),
                pid=os.getpid(),
            )
        else:
            restore = read_inventory(app.home).restores.get(name)
            if restore is not None:  # a rollback was killed half-way: finish it first
                raise UserError(
                    f"{name}: the rollback of its upgrade did not finish: run "
                    f"`{restore.command(name)}` first"
                )
            app.progress(
                f"{name}: resuming its upgrade to {record.target} at hop {record.done + 1} "
                f"of {len(record.path)}"
            )
            record = record.model_copy(update={"pid": os.getpid(), "failed": None})
        _save(app, name, record)
        for index in range(record.done, len(record.path)):
            record = _hop(app, name, record, index, rollback, timeout)
        _save(app, name, None)
    return UpgradeReport(name, plan.current, record.path[-1], len(record.path), record.backups)


def dry_run_lines(plan: UpgradePlan) -> list[str]:
    """What `--dry-run` prints for one instance."""
    if not plan.hops:
        return [f"{plan.name}: already on GitLab {plan.current}; nothing to do"]
    size = (
        f" (about {plan.last_backup_bytes // 2**20 + 1} MiB, like its last)"
        if plan.last_backup_bytes
        else ""
    )
    lines = [f"{plan.name}: {' -> '.join([plan.current, *(h.version for h in plan.hops)])}"]
    for number, hop in enumerate(plan.hops, 1):
        lines.append(
            f"  hop {number}: back up {plan.name}{size}; run {hop.image}; wait until healthy "
            "and for its background migrations"
        )
    return lines

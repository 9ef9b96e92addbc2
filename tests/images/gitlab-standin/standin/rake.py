"""gitlab-rake: gitlab:doctor:secrets, and the backup tasks behind gitlab-backup."""

from __future__ import annotations

import datetime as dt
import sys

from standin import backup, common, upgrade
from standin.common import event


def _log(message: str) -> None:
    print(f"I, [{dt.datetime.now().isoformat()} #1]  INFO -- : {message}", flush=True)


def doctor_secrets() -> int:
    """Report rows that gitlab-secrets.json cannot decrypt, and exit 0 whatever it finds.

    Gitlab::Doctor::Secrets#run! only logs "- <Model> failures: N", "Total: N row(s)
    affected" and "Done!"; the rake task never exits non-zero
    (lib/tasks/gitlab/doctor/secrets.rake, lib/gitlab/doctor/secrets.rb).
    """
    _log("Checking encrypted values in the database")
    with common.database() as db:
        stored = db.get("secrets_check")
    try:
        current = common.secrets_check(common.load_secrets())
    except (OSError, KeyError, ValueError):
        current = None
    bad = current != stored
    total = 0
    # One row per model that holds encrypted columns, as GitLab's output lists them.
    for model, rows in (("ApplicationSetting", 1), ("Ci::Variable", 2), ("User", 1)):
        failures = rows if bad else 0
        total += failures
        _log(f"- {model} failures: {failures}")
    _log(f"Total: {total} row(s) affected")
    _log("Done!")
    event("gitlab-rake", f"doctor:secrets {'fail' if bad else 'pass'}")
    return 0


def finalize(arguments: str) -> int:
    """gitlab:background_migrations:finalize[class,table,column,'args']: the migration is
    finished synchronously (BatchedMigrationRunner.finalize), then "Done."."""
    parts = arguments.split(",", 3)
    if len(parts) != 4:
        print("Must specify job_arguments as an argument")
        return 1
    job_class, table, column, _args = parts
    with common.database(write=True) as db:
        rows = [
            m
            for m in db.get("batched_background_migrations", [])
            if (m["job_class_name"], m["table_name"], m["column_name"])
            == (job_class, table, column)
        ]
        for row in rows:
            row["status"] = 6
    if not rows:
        print(
            f"Could not find batched background migration for the given configuration: {arguments}"
        )
        return 1
    event("gitlab-rake", f"finalized {job_class}")
    print("Done.")
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        common.die("usage: gitlab-rake TASK [KEY=VALUE...]")
    task, rest = argv[0], argv[1:]
    event("gitlab-rake", task)
    if task == "gitlab:doctor:secrets":
        return doctor_secrets()
    if task == "gitlab:background_migrations:status":
        print("\n".join(upgrade.status_lines()))
        return 0
    if task.startswith("gitlab:background_migrations:finalize["):
        return finalize(task.split("[", 1)[1].rstrip("]"))
    if task in ("gitlab:backup:create", "gitlab:backup:restore"):
        return backup.main([task.rsplit(":", 1)[1], *rest])
    common.die(
        f"rake aborted!\nDon't know how to build task '{task}' (See the list of available tasks with `rake --tasks`)"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

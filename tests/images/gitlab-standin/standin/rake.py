"""gitlab-rake: gitlab:doctor:secrets, and the backup tasks behind gitlab-backup."""

from __future__ import annotations

import datetime as dt
import sys

from standin import backup, common
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


def main(argv: list[str]) -> int:
    if not argv:
        common.die("usage: gitlab-rake TASK [KEY=VALUE...]")
    task, rest = argv[0], argv[1:]
    event("gitlab-rake", task)
    if task == "gitlab:doctor:secrets":
        return doctor_secrets()
    if task in ("gitlab:backup:create", "gitlab:backup:restore"):
        return backup.main([task.rsplit(":", 1)[1], *rest])
    common.die(
        f"rake aborted!\nDon't know how to build task '{task}' (See the list of available tasks with `rake --tasks`)"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

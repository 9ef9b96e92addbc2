"""gitlab-rake: gitlab:doctor:secrets, and the backup tasks behind gitlab-backup."""

from __future__ import annotations

import datetime as dt
import sys

from standin import backup, common
from standin.common import event


def _log(message: str) -> None:
    print(f"I, [{dt.datetime.now().isoformat()} #1]  INFO -- : {message}", flush=True)


def doctor_secrets() -> int:
    """Fail when gitlab-secrets.json is not the one the database was written with."""
    _log("Checking encrypted values in the database")
    with common.database() as db:
        stored = db.get("secrets_check")
    try:
        current = common.secrets_check(common.load_secrets())
    except (OSError, KeyError, ValueError):
        current = None
    failures = 0 if current == stored else 1
    _log(f"- ApplicationSetting failures: {failures}")
    if failures:
        _log("- ApplicationSetting: OpenSSL::Cipher::CipherError (bad decrypt)")
    _log(f"Total: {failures} row(s) affected")
    _log("Done!")
    event("gitlab-rake", f"doctor:secrets {'fail' if failures else 'pass'}")
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    if not argv:
        common.die("usage: gitlab-rake TASK [KEY=VALUE...]")
    task, rest = argv[0], argv[1:]
    event("gitlab-rake", task)
    if task == "gitlab:doctor:secrets":
        return doctor_secrets()
    if task == "gitlab:backup:create":
        return backup.create(common.kv_args(rest))
    if task == "gitlab:backup:restore":
        return backup.restore(common.kv_args(rest))
    common.die(
        f"rake aborted!\nDon't know how to build task '{task}' (See the list of available tasks with `rake --tasks`)"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

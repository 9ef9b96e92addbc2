"""PID 1 of the stand-in, after the real image's /assets/init-container."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time

from standin import common, ssh, upgrade
from standin.common import event
from standin.reconfigure import reconfigure

GITLAB_RB_TEMPLATE = """\
## GitLab configuration settings (written by the gitlab-standin test double)
# external_url 'GENERATED_EXTERNAL_URL'
"""


def _start_database() -> None:
    """PostgreSQL's start: after a SIGKILL its postmaster.pid is still there, and the
    server logs the crash and replays its WAL before it accepts connections."""
    mark = common.POSTMASTER_PID
    if os.path.exists(mark):
        event(
            "postgresql",
            "crash: database system was interrupted; last known up at "
            f"{os.path.getmtime(mark):.0f}; automatic recovery in progress",
        )
        print(
            "LOG:  database system was not properly shut down; automatic recovery in progress",
            flush=True,
        )
        time.sleep(common.switch("recovery_seconds", 5))
        event("postgresql", "recovered from crash")
    os.makedirs(os.path.dirname(mark), exist_ok=True)
    with open(mark, "w") as f:
        f.write(f"{os.getpid()}\n")


def _boot() -> None:
    version = common.version()
    print(f"Thank you for using GitLab Docker Image! (test double, version {version})")
    event("boot", f"start version={version}")
    shutil.rmtree(common.RUN, ignore_errors=True)  # stale pids from a previous run
    old = upgrade.data_version()
    if old is not None and not upgrade.upgrade_check(old, version):
        # init-container runs `gitlab-ctl upgrade-check OLD NEW` under `set -e`.
        event("boot", f"upgrade-check refused {old} -> {version}")
        sys.exit(1)
    os.makedirs(common.RUN, exist_ok=True)
    _start_database()
    if not os.path.exists(common.GITLAB_RB):
        os.makedirs(common.ETC, exist_ok=True)
        common.write_private(common.GITLAB_RB, GITLAB_RB_TEMPLATE)
        event("boot", "wrote /etc/gitlab/gitlab.rb from template")
    ssh.ensure_host_keys()
    skip = os.environ.get("GITLAB_SKIP_RECONFIGURE") == "true" and common.database_exists()
    if not skip:
        reconfigure(source="boot")
    with common.database() as db:
        ssh.write_authorized_keys(db)
    for service in common.SERVICES:
        common.start_service(service)
    event("boot", "services started")


def _shutdown(signum: int, _frame: object) -> None:
    """init-container traps TERM and runs `gitlab-ctl stop`, PostgreSQL included: that
    takes GITLAB_STANDIN_STOP_SECONDS, and only its end removes postmaster.pid."""
    event("boot", f"signal {signum}: stopping services")
    for service in common.SERVICES:
        common.stop_service(service)
    # `gitlab-ctl stop` stops PostgreSQL with the rest: no client connects from here on.
    with open(common.DATABASE_STOPPED, "w"):
        pass
    time.sleep(common.switch("stop_seconds", 2))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(common.POSTMASTER_PID)
    event("boot", "stopped")
    sys.exit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    try:
        _boot()
    except common.ConfigError as exc:
        # init-container runs under `set -e`: a failed reconfigure ends PID 1, and the
        # restart policy brings the container back to fail again (a crash loop).
        event("boot", f"failed: {exc}")
        print(f"FATAL: {exc}", file=sys.stderr, flush=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(common.POSTMASTER_PID)
        sys.exit(1)
    except Exception as exc:
        event("boot", f"failed: {exc!r}")
        raise
    # As PID 1, reap every orphan (services restarted by `docker exec gitlab-ctl ...`).
    while True:
        try:
            os.wait()
        except ChildProcessError:
            signal.pause()
        except InterruptedError:
            continue


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()

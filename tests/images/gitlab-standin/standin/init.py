"""PID 1 of the stand-in, after the real image's /assets/init-container."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys

from standin import common
from standin.common import event
from standin.reconfigure import reconfigure

GITLAB_RB_TEMPLATE = """\
## GitLab configuration settings (written by the gitlab-standin test double)
# external_url 'GENERATED_EXTERNAL_URL'
"""


def _boot() -> None:
    version = common.version()
    print(
        f"Thank you for using GitLab Docker Image! (test double, version {version}-{common.EDITION})"
    )
    event("boot", f"start version={version}")
    shutil.rmtree(common.RUN, ignore_errors=True)  # stale pids from a previous run
    os.makedirs(common.RUN, exist_ok=True)
    if not os.path.exists(common.GITLAB_RB):
        os.makedirs(common.ETC, exist_ok=True)
        common.write_private(common.GITLAB_RB, GITLAB_RB_TEMPLATE)
        event("boot", "wrote /etc/gitlab/gitlab.rb from template")
    skip = os.environ.get("GITLAB_SKIP_RECONFIGURE") == "true" and common.database_exists()
    if not skip:
        reconfigure(source="boot")
    for service in common.SERVICES:
        common.start_service(service)
    event("boot", "services started")


def _shutdown(signum: int, _frame: object) -> None:
    event("boot", f"signal {signum}: stopping services")
    for service in common.SERVICES:
        common.stop_service(service)
    event("boot", "stopped")
    sys.exit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    try:
        _boot()
    except Exception as exc:  # a failed reconfigure stops the container, like the real one
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

"""Scheduled backups: one run (what a cron job or the sidecar does), and the sidecar's loop.

Each run is logged, a timestamped line per step, to
<data_root>/noeud-gitlab-<name>/bckups/runs/<UTC time>.log and to standard output (the
sidecar's `docker logs`); its outcome is recorded in the inventory for `girofle ls`.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from croniter import croniter

from girofle.errors import GirofleError
from girofle.home import Home
from girofle.lifecycle.app import App
from girofle.render.model import InstancePaths

RUN_LOGS = "runs"
KEEP_RUN_LOGS = 200
# How often the sidecar re-reads girofle.yml, so that a changed schedule applies without
# restarting it.
RECHECK_SECONDS = 60.0


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_logs_dir(app: App, name: str) -> Path:
    return InstancePaths.of(app.config.data_root, name).backups / RUN_LOGS


def _logger(path: Path, echo: Callable[[str], None]) -> Callable[[str], None]:
    def log(message: str) -> None:
        line = f"{_utc_now().strftime('%Y-%m-%dT%H:%M:%SZ')} {message}"
        echo(line)
        try:
            with path.open("a") as handle:
                handle.write(line + "\n")
        except OSError:
            pass  # a full disk must not turn a logged failure into a crash

    return log


def _prune_logs(directory: Path) -> None:
    for old in sorted(directory.glob("*.log"))[:-KEEP_RUN_LOGS]:
        old.unlink(missing_ok=True)


def _logged_run(
    home: Home,
    name: str,
    kind: str,
    job: Callable[[App], tuple[bool, str]],
    echo: Callable[[str], None],
) -> bool:
    """Run ``job`` with its progress logged to the instance's run logs (and ``echo``)."""
    app = App(home)
    directory = run_logs_dir(app, name)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = "" if kind == "backup" else f"-{kind}"
    log = _logger(directory / f"{_utc_now().strftime('%Y%m%dT%H%M%SZ')}{suffix}.log", echo)
    app.progress = log
    try:
        ok, outcome = job(app)
    except GirofleError as err:
        ok, outcome = False, f"FAILED: {err}"
    finally:
        _prune_logs(directory)
    log(f"{name}: {outcome}")
    return ok


def run_scheduled(home: Home, name: str, echo: Callable[[str], None] = print) -> bool:
    """Back up ``name`` as its schedule would (pushed when its policy says so); log the run."""
    from girofle.backup.instance import backup_instance

    def job(app: App) -> tuple[bool, str]:
        push = app.config.backups.policy(name).push and app.config.remote is not None
        app.progress(
            f"{name}: scheduled backup ({'then push to the remote' if push else 'local only'})"
        )
        ref = backup_instance(app, name, remote=push)
        pushed = f", remote snapshot {ref.pushed.snapshot_id}" if ref.pushed else ""
        return True, f"OK: backup {ref.backup_id}{pushed}"

    return _logged_run(home, name, "backup", job, echo)


def run_scheduled_drill(home: Home, name: str, echo: Callable[[str], None] = print) -> bool:
    """Drill ``name``'s latest backup as drills.schedule would; log the run beside backups'."""
    from girofle.backup.drill import drill

    def job(app: App) -> tuple[bool, str]:
        source = app.config.drills.source
        app.progress(f"{name}: scheduled restore drill of its latest {source} backup")
        report = drill(app, name, source)
        verdict = "OK" if report.ok else "FAILED"
        return report.ok, f"{verdict}: drill of {report.backup_id}: {report.detail}"

    return _logged_run(home, name, "drill", job, echo)


def due_jobs(
    schedules: dict[str, str | None], last: dict[str, dt.datetime], now: dt.datetime
) -> tuple[list[str], dt.datetime | None]:
    """Which of the jobs (backup, drill) are due at ``now``, in the order ``schedules``
    gives them, and when the next one that is not due comes."""
    due: list[tuple[dt.datetime, str]] = []
    upcoming: list[tuple[dt.datetime, str]] = []
    for job, schedule in schedules.items():
        if schedule is None:
            continue
        when = next_run(schedule, last[job])
        (due if now >= when else upcoming).append((when, job))
    # In the order given (backup before drill): a drill due with a backup then tests it.
    ordered = [job for job in schedules if job in {j for _, j in due}]
    return ordered, min((w for w, _ in upcoming), default=None)


def next_run(schedule: str, after: dt.datetime) -> dt.datetime:
    """The first time ``schedule`` fires after ``after``."""
    return croniter(schedule, after).get_next(dt.datetime)


def run_daemon(home: Home, name: str, stop: threading.Event | None = None) -> None:
    """Run ``name``'s backups on its schedule until stopped (SIGTERM, from `docker stop`)."""
    stop = stop or threading.Event()

    def terminate(signum: int, frame: FrameType | None) -> None:
        # Unwinds a backup in progress, which removes its partial directory on the way out.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    started = _utc_now()
    last = {"backup": started, "drill": started}
    runs = {"backup": run_scheduled, "drill": run_scheduled_drill}
    print(f"{name}: backup sidecar started (backups and restore drills)", flush=True)
    while not stop.is_set():
        try:
            config = App(home).config
            schedules = {
                "backup": config.backups.policy(name).schedule,
                "drill": config.drills.schedule,
            }
        except GirofleError as err:
            print(f"{name}: cannot read the schedule: {err}", flush=True)
            stop.wait(RECHECK_SECONDS)
            continue
        now = _utc_now()
        due, upcoming = due_jobs(schedules, last, now)
        for job in due:
            last[job] = now
            runs[job](home, name, echo=lambda line: print(line, flush=True))
        if due:
            continue
        wait = (upcoming - now).total_seconds() if upcoming else RECHECK_SECONDS
        stop.wait(min(RECHECK_SECONDS, wait))

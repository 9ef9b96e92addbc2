"""`girofle cron install|remove`: the scheduled backups as jobs in the host's crontab.

Girofle's jobs carry a marker naming the home, so installing replaces exactly them and
removing leaves every other line of the crontab as it was.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from girofle.errors import GirofleError, UserError
from girofle.inventory import read_inventory
from girofle.lifecycle.app import App


def marker(home_id: str) -> str:
    """What ends each of a home's lines (then the instance's name)."""
    return f"# girofle:{home_id} "


def _girofle_command() -> str:
    beside = Path(sys.executable).parent / "girofle"
    found = str(beside) if beside.is_file() else shutil.which("girofle")
    if found is None:
        raise UserError("cannot find the girofle command to put in the crontab")
    return str(Path(found).resolve())


def jobs(app: App) -> list[str]:
    """Per instance that is not decommissioned, a line for its backups and one for its
    restore drills (unless drills.schedule is none)."""
    command = _girofle_command()
    home = shlex.quote(str(app.home.root))
    tag = marker(app.config.home_id)
    lines = []
    for instance in sorted(read_inventory(app.home).instances.values(), key=lambda i: i.name):
        if instance.state == "decommissioned":
            continue
        schedule = app.config.backups.policy(instance.name).schedule
        lines.append(
            f"{schedule} GIROFLE_HOME={home} {shlex.quote(command)} backup scheduled "
            f"{instance.name} >/dev/null 2>&1 {tag}{instance.name}"
        )
        drills = app.config.drills.schedule
        if drills is not None:
            lines.append(
                f"{drills} GIROFLE_HOME={home} {shlex.quote(command)} drill {instance.name} "
                f"--scheduled >/dev/null 2>&1 {tag}{instance.name} drill"
            )
    return lines


def _crontab(
    *args: str, text: str | None = None, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    if shutil.which("crontab") is None:
        raise UserError("the crontab command is missing: install cron")
    who = ["-u", user] if user else []
    return subprocess.run(["crontab", *who, *args], input=text, capture_output=True, text=True)


def read_crontab(user: str | None = None) -> list[str]:
    """The crontab of ``user`` (default: whoever runs), as lines (none when it has none)."""
    proc = _crontab("-l", user=user)
    if proc.returncode != 0:
        if "no crontab" in proc.stderr:
            return []
        raise GirofleError(f"crontab -l failed: {proc.stderr.strip()}")
    return proc.stdout.splitlines()


def write_crontab(lines: list[str], user: str | None = None) -> None:
    proc = _crontab("-", text="".join(line + "\n" for line in lines), user=user)
    if proc.returncode != 0:
        raise GirofleError(f"crontab rejected Girofle's jobs: {proc.stderr.strip()}")


def install(app: App, user: str | None = None, only_if_changed: bool = False) -> list[str]:
    """Replace this home's jobs in the crontab (of ``user``) with one per instance; return
    them (none, with ``only_if_changed``, when the crontab had exactly these already)."""
    tag = marker(app.config.home_id)
    new = jobs(app)
    current = read_crontab(user)
    others = [line for line in current if tag not in line]
    if only_if_changed and others + new == current:
        return []
    write_crontab(others + new, user)
    return new


def remove(app: App) -> int:
    """Remove this home's jobs from the crontab; return how many there were."""
    tag = marker(app.config.home_id)
    lines = read_crontab()
    kept = [line for line in lines if tag not in line]
    if len(kept) != len(lines):
        write_crontab(kept)
    return len(lines) - len(kept)

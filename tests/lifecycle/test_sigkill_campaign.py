"""Twenty SIGKILLs at random moments (seeded) across new-stack, backup, restore --force and
reconfigure, each followed by a rerun that must converge: the instance healthy with what
was asked, every backup verified, and a restore's data the requested backup's."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.backup.test_local_backup_restore import restored_commits, seed
from tests.backup.test_restartable_restore import one_more_commit
from tests.fleet import Fleet, instance_name

pytestmark = pytest.mark.engine

KILLS = 20
SEED = int(os.environ.get("GIROFLE_KILL_SEED", "20261127"))
BACKUP_PID_FILE = "/opt/gitlab/embedded/service/gitlab-rails/tmp/backup_restore.pid"


def gitlab_busy(name: str) -> bool:
    """Whether GitLab's backup or restore still runs in the container (its pid lock)."""
    probe = f"test -f {BACKUP_PID_FILE} && kill -0 $(cat {BACKUP_PID_FILE})"
    return subprocess.run(["docker", "exec", f"gitlab-{name}", "sh", "-c", probe]).returncode == 0


def zone(i: int) -> str:
    """A time zone GitLab knows, different from the last one set."""
    return f"Etc/GMT+{i % 12 + 1}"


def rerun(fleet: Fleet, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; while GitLab's own backup or restore, started by the
    killed run, still holds its lock (exit 3, said so), wait for it to end and run again."""
    while True:
        proc = fleet.run(*args, check=False, timeout=600)
        if proc.returncode == 3 and "still running in its container" in proc.stderr:
            deadline = time.monotonic() + 300
            while gitlab_busy(name) and time.monotonic() < deadline:
                time.sleep(0.5)  # polling the real lock, not guessing a duration
            continue
        assert proc.returncode == 0, f"girofle {' '.join(args)}: {proc.stderr}"
        return proc


def test_twenty_sigkills_then_reruns_converge(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    fleet = make_fleet()
    name = instance_name("a")
    # Retention would, in time, delete the backup the restores ask for: keep them all.
    fleet.init("--first-instance", name, "-c", "backups.keep_last=1000", routing="ports")
    commits = seed(fleet, name, tmp_path / "seed")
    asked = fleet.run("backup", name).stdout.strip()

    def restore_args() -> tuple[str, ...]:
        unfinished = name in fleet.inventory().get("restores", {})
        # A rerun of a killed restore names no backup: it must resume the one asked for.
        return (
            ("restore", name, "--force")
            if unfinished
            else ("restore", name, "--backup", asked, "--force")
        )

    operations: dict[str, Callable[[int], tuple[str, ...]]] = {
        "new-stack": lambda i: ("new-stack", instance_name(f"k{i}")),
        "backup": lambda i: ("backup", name),
        "restore": lambda i: ("restore", name, "--backup", asked, "--force"),
        "reconfigure": lambda i: (
            "reconfigure",
            name,
            "--set",
            f"gitlab_rails.time_zone={zone(i)}",
        ),
    }
    # How long each takes here, unkilled: the kills fall anywhere within that.
    durations = {}
    new_instances = []
    for kind, args in operations.items():
        command = args(0)
        started = time.monotonic()
        rerun(fleet, name, *command)
        durations[kind] = time.monotonic() - started
        if kind == "new-stack":
            new_instances.append(command[1])
    schedule = [(rng.choice(sorted(operations)), rng.random()) for _ in range(KILLS)]
    print(f"seed {SEED}: durations {durations}, schedule {schedule}")

    for i, (kind, fraction) in enumerate(schedule, start=1):
        if kind == "restore":
            one_more_commit(fleet, name, tmp_path / "seed")  # the safety backup has it
        args = operations[kind](i)
        proc = fleet.popen(*args)
        time.sleep(fraction * durations[kind])  # the random moment is the point here
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rerun(fleet, name, *(restore_args() if kind == "restore" else args))

        states = {r["name"]: r["state"] for r in fleet.ls()}
        assert set(states.values()) == {"healthy"}, (i, kind, fraction, states)
        if kind == "new-stack":
            new_instances.append(args[1])
        elif kind == "restore":
            assert restored_commits(fleet, name, tmp_path / f"r{i}") == commits, (i, fraction)
            assert fleet.inventory()["restores"] == {}
        elif kind == "reconfigure":
            rb = (fleet.root / "stacks" / name / "gitlab.rb").read_text()
            assert f"gitlab_rails['time_zone'] = '{zone(i)}'" in rb
    assert sorted([*new_instances, name]) == sorted(r["name"] for r in fleet.ls())
    verified = fleet.run("backup", "verify", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr

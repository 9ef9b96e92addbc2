"""Scheduled backups: the sidecar on a cron schedule, the host's crontab, and a full disk."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from python_on_whales import DockerClient

from tests.backup.test_remote import Remote, init_with_remote, sftp_remote  # noqa: F401
from tests.fleet import NEVER_SOON, Fleet, instance_name
from tests.helpers import wait_until

pytestmark = pytest.mark.engine

EVERY_MINUTE = "'* * * * *'"  # quoted: a bare * starts a YAML alias


def run_logs(fleet: Fleet, name: str) -> list[str]:
    runs = fleet.data_root / f"noeud-gitlab-{name}" / "bckups" / "runs"
    return [p.read_text() for p in sorted(runs.glob("*.log"))] if runs.is_dir() else []


def local_backups(fleet: Fleet, name: str) -> list[dict[str, object]]:
    return json.loads(fleet.run("backups", name, "--json").stdout)  # type: ignore[no-any-return]


def test_a_sidecar_on_a_one_minute_schedule_backs_up_and_pushes(
    make_fleet: Callable[[], Fleet],
    engine: DockerClient,
    sftp_remote: Remote,  # noqa: F811
) -> None:
    fleet = make_fleet()
    name = instance_name("s")
    # The fleet's schedule never fires during the test; the instance's override does.
    init_with_remote(
        fleet,
        sftp_remote,
        name,
        "-c",
        f"backups.schedule={NEVER_SOON}",
        "-c",
        f"backups.instances.{name}.schedule={EVERY_MINUTE}",
    )
    started = time.monotonic()
    sidecar = engine.container.inspect(f"gitlab-{name}-backup")
    assert sidecar.state.running
    assert sidecar.host_config.network_mode == "none"

    def pushed() -> bool:
        return any(
            "OK: backup" in log and "remote snapshot" in log for log in run_logs(fleet, name)
        )

    assert wait_until(pushed, timeout=120, interval=1), (
        f"no pushed backup within two minutes; sidecar logs:\n{engine.container.logs(sidecar)}"
    )
    elapsed = time.monotonic() - started
    backups = local_backups(fleet, name)
    assert backups, "the run log says OK but there is no local backup"
    snapshots = json.loads(fleet.run("backups", name, "--remote", "--json").stdout)
    assert {s["backup"] for s in snapshots} <= {b["backup"] for b in backups}
    assert snapshots, "the run log says pushed but the remote holds no snapshot"
    row = next(r for r in fleet.ls() if r["name"] == name)
    assert row["last_backup_result"] == "ok" and row["last_backup"] is not None
    assert "OK: backup" in engine.container.logs(sidecar)  # each run is in docker logs too
    print(f"sidecar: first pushed backup {elapsed:.0f} s after the instance was up")


@pytest.fixture
def saved_crontab() -> Iterator[str]:
    """The user's crontab with one line of the operator's own; put back afterwards."""
    before = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    own = "17 3 * * * /bin/true # the operator's own job\n"
    subprocess.run(["crontab", "-"], input=own, text=True, check=True)
    try:
        yield own.strip()
    finally:
        if before.returncode == 0:
            subprocess.run(["crontab", "-"], input=before.stdout, text=True, check=True)
        else:
            subprocess.run(["crontab", "-r"], capture_output=True)


def crontab_lines() -> list[str]:
    return subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout.splitlines()


def test_cron_install_replaces_the_sidecars_and_its_job_backs_up(
    make_fleet: Callable[[], Fleet], engine: DockerClient, saved_crontab: str
) -> None:
    fleet = make_fleet()
    name = instance_name("c")
    # The default schedules, to see them in the crontab (the sidecar is replaced in seconds).
    fleet.init("--first-instance", name, routing="ports", default_schedules=True)
    assert engine.container.exists(f"gitlab-{name}-backup")

    jobs = fleet.run("cron", "install").stdout.splitlines()
    assert len(jobs) == 2 and jobs[0].startswith("0 */4 * * * ")
    assert jobs[1].startswith("30 3 * * 0 ") and f" drill {name} --scheduled " in jobs[1]
    assert crontab_lines() == [saved_crontab, *jobs]
    config = yaml.safe_load((fleet.root / "girofle.yml").read_text())
    assert config["backups"]["scheduler"] == "cron"
    assert not engine.container.exists(f"gitlab-{name}-backup")  # no double schedule
    assert engine.container.inspect(f"gitlab-{name}").state.running

    # What cron would run, run by the shell as cron does.
    command = jobs[0].split(" ", 5)[5]
    subprocess.run(["sh", "-c", command], check=True, timeout=300)
    assert len(local_backups(fleet, name)) == 1
    assert "OK: backup" in run_logs(fleet, name)[-1]
    # The weekly drill's job, run the same way, drills that backup.
    subprocess.run(["sh", "-c", jobs[1].split(" ", 5)[5]], check=True, timeout=600)
    assert (
        f"OK: drill of {local_backups(fleet, name)[0]['backup']}: ok" in run_logs(fleet, name)[-1]
    )

    assert fleet.run("cron", "install").stdout.splitlines() == jobs  # idempotent
    assert crontab_lines() == [saved_crontab, *jobs]
    fleet.run("cron", "remove")
    assert crontab_lines() == [saved_crontab]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """Mount a real 32 MiB tmpfs on a directory: a disk that can fill up."""
    mounted: list[Path] = []

    def mount(directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(directory)], check=True
        )
        mounted.append(directory)

    yield mount
    for directory in mounted:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def fill(directory: Path) -> Path:
    """Fill the disk under ``directory`` until it has no space left."""
    filler = directory / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        except OSError:
            pass
    while True:  # the last partial megabyte too
        try:
            with filler.open("ab") as handle:
                handle.write(b"\0" * 4096)
        except OSError:
            return filler


def test_a_full_disk_fails_the_backup_in_one_line_and_loses_nothing(
    make_fleet: Callable[[], Fleet], small_disk: Callable[[Path], None]
) -> None:
    fleet = make_fleet()
    name = instance_name("f")
    fleet.init("--first-instance", name, "-c", "backups.scheduler=none", routing="ports")
    backups_dir = fleet.data_root / f"noeud-gitlab-{name}" / "bckups"
    small_disk(backups_dir)
    first = fleet.run("backup", name).stdout.strip()
    inventory_before = fleet.inventory()
    filler = fill(backups_dir)

    proc = fleet.run("backup", name, check=False)
    assert proc.returncode == 6
    assert proc.stderr.strip().splitlines()[-1] == (
        f"girofle: {name}: backup failed: No space left on device"
    )
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in backups_dir.iterdir()) == [first, "filler"]  # no partial
    fleet.run("backup", "verify", name)  # the earlier backup still matches its manifest
    inventory_after = fleet.inventory()
    assert inventory_after["instances"][name]["last_backup_result"].startswith("failed: ")
    inventory_after["instances"][name]["last_backup_result"] = "ok"
    assert inventory_after == inventory_before
    row = next(r for r in fleet.ls() if r["name"] == name)
    assert row["last_backup_result"].startswith("failed: ") and row["state"] == "healthy"
    assert not list(
        (fleet.data_root / f"noeud-gitlab-{name}/mapping-volumes/data/backups").glob("*.tar")
    )

    filler.unlink()
    second = fleet.run("backup", name).stdout.strip()
    assert [b["backup"] for b in local_backups(fleet, name)] == [first, second]

"""Girofle on the real image's behaviour, as the stand-in models it (reference:
gitlab-real-behaviour.md): strict gitlab.rb, slow shutdowns, GitLab's backup lock, and a
healthcheck that passes before boot from 19.1 on."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.fleet import Fleet, instance_name
from tests.helpers import wait_until

pytestmark = pytest.mark.engine

BACKUP_PID_FILE = "/opt/gitlab/embedded/service/gitlab-rails/tmp/backup_restore.pid"


def instance_dir(fleet: Fleet, name: str) -> Path:
    return fleet.data_root / f"noeud-gitlab-{name}"


def set_switches(fleet: Fleet, name: str, **switches: float) -> None:
    """The stand-in's test switches, in the instance's /etc/gitlab (read when used)."""
    config = instance_dir(fleet, name) / "mapping-volumes" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "standin-switches.json").write_text(json.dumps(switches))


def snapshot(fleet: Fleet, name: str) -> dict[str, bytes]:
    stack = fleet.root / "stacks" / name
    files = {p.name: p.read_bytes() for p in stack.iterdir() if p.is_file()}
    return {**files, "inventory": (fleet.root / "inventory.json").read_bytes()}


def since_last_boot(fleet: Fleet, name: str) -> list[str]:
    """'component message' of each event of the stand-in since its container last booted."""
    steps = [f"{c} {m}" for _, c, m in fleet.events(name)]
    last = max(i for i, s in enumerate(steps) if s.startswith("boot start"))
    return steps[last:]


def set_config(fleet: Fleet, dotted: str, value: object) -> None:
    path = fleet.root / "girofle.yml"
    data = yaml.safe_load(path.read_text())
    *parents, key = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[key] = value
    path.write_text(yaml.safe_dump(data))


def test_set_keys_are_checked_first_and_a_refused_gitlab_rb_is_rolled_back(
    make_fleet: Callable[[], Fleet],
) -> None:
    fleet = make_fleet()
    name = instance_name()
    fleet.init("--first-instance", name, routing="ports")
    before = snapshot(fleet, name)
    for pair, says in (
        ("gitlab_rail.time_zone=x", "GitLab's gitlab.rb has no 'gitlab_rail'"),
        ("sleep.x=1", "GitLab's gitlab.rb has no 'sleep'"),
        ("nginx.listen_port=81", "Girofle sets it from routing in girofle.yml"),
        ("letsencrypt.enable=true", "Girofle sets it from tls.mode: acme"),
        ("gitlab_rails.initial_root_password=x", "the root password file"),
    ):
        proc = fleet.run("reconfigure", name, "--set", pair, check=False)
        assert proc.returncode == 2, pair
        (line,) = proc.stderr.strip().splitlines()
        assert says in line, line
        assert snapshot(fleet, name) == before  # nothing recorded, nothing rendered
    other = instance_name()
    refused = fleet.run("new-stack", other, "--set", "gitlab_rail.x=1", check=False)
    assert refused.returncode == 2
    assert other not in fleet.inventory()["instances"]

    # A key that slipped into the inventory (an older Girofle, a hand edit): GitLab refuses
    # the gitlab.rb; the previous one and the inventory come back, and GitLab keeps running.
    inventory = json.loads(before["inventory"])
    inventory["instances"][name]["settings"] = {"gitlab_rail.time_zone": "UTC"}
    (fleet.root / "inventory.json").write_text(json.dumps(inventory))
    slipped = snapshot(fleet, name)
    proc = fleet.run(
        "reconfigure", name, "--set", "gitlab_rails.time_zone=Europe/Paris", check=False
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "Reading unsupported config value gitlab_rail." in last
    assert "runs again with its previous settings and gitlab.rb" in last
    after = snapshot(fleet, name)
    assert after["gitlab.rb"] == slipped["gitlab.rb"]
    assert json.loads(after["inventory"])["instances"][name]["settings"] == {
        "gitlab_rail.time_zone": "UTC"
    }
    assert fleet.ls()[0]["state"] == "healthy"
    fleet.run("restart", name)  # the boot reads the restored gitlab.rb: no crash loop
    assert fleet.ls()[0]["state"] == "healthy"


def test_stops_restarts_recreations_and_rm_never_cut_gitlabs_shutdown(
    make_fleet: Callable[[], Fleet],
) -> None:
    fleet = make_fleet()
    name, sick = instance_name(), instance_name("sick")
    fleet.init("--first-instance", name, routing="ports")
    # Longer than Docker's default 10 s between SIGTERM and SIGKILL.
    set_switches(fleet, name, stop_seconds=12)
    fleet.run("stop", name)
    fleet.run("start", name)
    fleet.run("restart", name)
    set_config(fleet, "gitlab.shm_size", "300m")  # the Compose file changes: a recreation
    fleet.run("reconfigure", name)
    fleet.run("rm", name, "--no-backup")
    steps = [f"{c} {m}" for _, c, m in fleet.events(name)]
    assert steps.count("boot stopped") == 4, steps
    assert not [s for s in steps if s.startswith("postgresql crash")]

    set_config(fleet, "gitlab.health_timeout", 10)
    set_switches(fleet, sick, stop_seconds=12)
    proc = fleet.run("new-stack", sick, "--image", fleet.images.standin_unhealthy, check=False)
    assert proc.returncode == 5
    fleet.run("start", sick, check=False)  # boots again (and times out again)
    steps = [f"{c} {m}" for _, c, m in fleet.events(sick)]
    assert steps.count("boot stopped") == 2, steps
    assert not [s for s in steps if s.startswith("postgresql crash")]


def backup_while_gitlab_writes(
    make_fleet: Callable[[], Fleet],
) -> tuple[Fleet, str, Path, subprocess.Popen[str]]:
    """An instance whose gitlab-backup keeps its archive open for 15 s, and a `girofle
    backup` of it, running, once GitLab's archive has appeared in the data volume."""
    fleet = make_fleet()
    name = instance_name()
    fleet.init("--first-instance", name, routing="ports")
    set_switches(fleet, name, backup_seconds=15)
    archives = instance_dir(fleet, name) / "mapping-volumes" / "data" / "backups"
    girofle = fleet.popen("backup", name)
    assert wait_until(lambda: any(archives.glob("*_gitlab_backup.tar")), 60)
    return fleet, name, archives, girofle


def test_a_backup_killed_while_gitlab_writes_is_reported_then_swept(
    make_fleet: Callable[[], Fleet],
) -> None:
    fleet, name, archives, girofle = backup_while_gitlab_writes(make_fleet)
    girofle.send_signal(signal.SIGKILL)
    girofle.wait()
    (stray,) = archives.glob("*_gitlab_backup.tar")

    proc = fleet.run("backup", name, check=False)
    assert proc.returncode == 3
    (line,) = proc.stderr.strip().splitlines()[-1:]
    assert f"a backup of {name} is still running in its container since" in line

    def gitlab_done() -> bool:
        probe = ["docker", "exec", f"gitlab-{name}", "test", "-e", BACKUP_PID_FILE]
        return subprocess.run(probe, check=False).returncode != 0

    assert wait_until(gitlab_done, 60)
    set_switches(fleet, name)
    backup_id = fleet.run("backup", name).stdout.strip()
    assert not stray.exists()
    assert list(archives.glob("*_gitlab_backup.tar")) == []
    listed = json.loads(fleet.run("backups", name, "--json").stdout)
    assert [b["backup"] for b in listed] == [backup_id]
    bckups = instance_dir(fleet, name) / "bckups"
    assert sorted(p.name for p in bckups.iterdir() if p.name != "runs") == [backup_id]


def test_with_a_19_1_image_healthy_means_booted(make_fleet: Callable[[], Fleet]) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance", routing="ports")
    name = instance_name()
    # A boot whose reconfigure takes a while: from 19.1 the image's own check would pass
    # during it, since the rc file it reads is written only at its end.
    set_switches(fleet, name, reconfigure_seconds=6)
    fleet.run("new-stack", name, "--image", fleet.images.standin_rc_optional)
    assert_healthy_only_after_boot(fleet, name)
    subprocess.run(["docker", "rm", "-f", f"gitlab-{name}"], check=True, capture_output=True)
    fleet.run("start", name)  # a new container, booting from scratch
    assert_healthy_only_after_boot(fleet, name)


def assert_healthy_only_after_boot(fleet: Fleet, name: str) -> None:
    steps = since_last_boot(fleet, name)
    started = steps.index("boot services started")
    passes = [i for i, s in enumerate(steps) if s == "healthcheck pass"]
    assert passes and passes[0] > started, steps
    assert fleet.ls()[0]["state"] == "healthy"


def meminfo_file(directory: Path, available_gib: float) -> Path:
    path = directory / "meminfo"
    kib = int(available_gib * (1 << 20))
    path.write_text(f"MemTotal:       {2 * kib} kB\nMemAvailable:   {kib} kB\n")
    return path


def test_memory_budget_refuses_what_does_not_fit_and_constrained_fits(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance", routing="ports")
    small = {"GIROFLE_MEMINFO": str(meminfo_file(tmp_path, 4))}
    name = instance_name()
    proc = fleet.run("new-stack", name, env=small, check=False)
    assert proc.returncode == 3
    (line,) = proc.stderr.strip().splitlines()
    assert "needs 8.0 GiB" in line and "4.0 GiB available" in line and "--force" in line
    inventory = fleet.root / "inventory.json"
    assert not inventory.exists() or name not in fleet.inventory()["instances"]
    assert not (fleet.root / "stacks" / name).exists()

    set_config(fleet, "gitlab.memory_profile", "constrained")
    fleet.run("new-stack", name, env=small)
    applied = json.loads(
        (instance_dir(fleet, name) / "mapping-volumes/log/standin/applied-config.json").read_text()
    )
    assert applied["puma"]["worker_processes"] == 0
    assert applied["sidekiq"]["concurrency"] == 10
    doctor = {c["check"]: c for c in json.loads(fleet.run("doctor", "--json", env=small).stdout)}
    assert doctor["memory"]["ok"], doctor["memory"]


def boot_windows(fleet: Fleet, name: str) -> tuple[str, str]:
    """(first boot start, first healthcheck pass) of an instance, from the stand-in's log."""
    events = fleet.events(name)
    start = next(t for t, c, m in events if c == "boot" and m.startswith("start"))
    healthy = next(t for t, c, m in events if c == "healthcheck" and m == "pass")
    return start, healthy


def test_first_boots_queue_instead_of_running_all_at_once(
    make_fleet: Callable[[], Fleet],
) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance", "-c", "gitlab.concurrent_first_boots=2", routing="ports")
    names = [instance_name() for _ in range(6)]
    for name in names:
        set_switches(fleet, name, reconfigure_seconds=3)  # boots long enough to overlap
    procs = [fleet.popen("new-stack", name) for name in names]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert [rc for rc, _ in results] == [0] * 6, [err for _, err in results]
    assert any("waiting for a first-boot slot" in err for _, err in results)
    windows = [boot_windows(fleet, name) for name in names]
    edges = sorted([(s, 1) for s, _ in windows] + [(e, -1) for _, e in windows])
    booting, most = 0, 0
    for _, change in edges:
        booting += change
        most = max(most, booting)
    assert most <= 2, windows
    assert {r["state"] for r in fleet.ls()} == {"healthy"}


def test_a_container_killed_during_a_backup_is_a_failed_backup_and_its_archive_goes(
    make_fleet: Callable[[], Fleet],
) -> None:
    fleet, name, archives, girofle = backup_while_gitlab_writes(make_fleet)
    subprocess.run(["docker", "kill", f"gitlab-{name}"], check=True, capture_output=True)
    _, err = girofle.communicate(timeout=60)
    assert girofle.returncode == 6, err
    assert err.strip().splitlines()[-1].startswith(f"girofle: {name}: backup failed: ")
    assert list(archives.glob("*_gitlab_backup.tar"))  # GitLab's truncated archive stays
    set_switches(fleet, name)
    fleet.run("start", name)
    backup_id = fleet.run("backup", name).stdout.strip()
    assert list(archives.glob("*_gitlab_backup.tar")) == []
    assert [b["backup"] for b in json.loads(fleet.run("backups", name, "--json").stdout)] == [
        backup_id
    ]

"""girofle upgrade: along GitLab's required stops, against stand-ins that enforce them."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.backup.test_local_backup_restore import TOKEN, restored_commits, seed
from tests.fleet import Fleet, instance_name
from tests.helpers import git, http, wait_until

pytestmark = pytest.mark.engine

TARGET = "19.0.1"


def fleet_on_18_8(make_fleet: Callable[[], Fleet], tmp_path: Path) -> tuple[Fleet, str, list[str]]:
    """A ports fleet whose instance runs 18.8.11, with a project, commits, a tag and a wiki."""
    fleet = make_fleet()
    fleet.env["GIROFLE_GITLAB_IMAGE"] = fleet.images.standin_before_stop
    name = instance_name("u")
    fleet.init("--first-instance", name, routing="ports")
    commits = seed(fleet, name, tmp_path)
    repo = tmp_path / "demo"
    git("tag", "v1.0", cwd=repo)
    password = (fleet.root / "secrets" / "instances" / name / "root_password").read_text().strip()
    git(
        "push",
        "-q",
        f"http://root:{password}@{fleet.ls()[0]['http']}/root/demo.git",
        "v1.0",
        cwd=repo,
    )
    return fleet, name, commits


def switches(fleet: Fleet, name: str, values: dict[str, object]) -> None:
    """Stand-in switches, read from the instance's /etc/gitlab when they are used."""
    config = fleet.data_root / f"noeud-gitlab-{name}" / "mapping-volumes" / "config"
    (config / "standin-switches.json").write_text(json.dumps(values))


def backups(fleet: Fleet, name: str) -> list[dict[str, object]]:
    return json.loads(fleet.run("backups", name, "--json").stdout)  # type: ignore[no-any-return]


def data_is_intact(fleet: Fleet, name: str, commits: list[str], workdir: Path) -> None:
    assert restored_commits(fleet, name, workdir) == commits
    assert "v1.0" in git("tag", cwd=workdir / "clone").split()
    url = f"http://{fleet.ls()[0]['http']}/api/v4/projects/root%2Fdemo/wikis"
    pages = json.loads(http(url, {"PRIVATE-TOKEN": TOKEN}).body)
    assert [p["title"] for p in pages] == ["Runbook"]


def gitlab_containers(engine: DockerClient, name: str) -> list[str]:
    # By name: a listing of the whole engine races with the other test process, whose
    # containers can vanish between the listing and their lazy inspection.
    container = f"gitlab-{name}"
    return [container] if engine.container.exists(container) else []


def test_an_upgrade_across_a_required_stop_waits_for_each_hops_migrations(
    make_fleet: Callable[[], Fleet], tmp_path: Path, engine: DockerClient
) -> None:
    fleet, name, commits = fleet_on_18_8(make_fleet, tmp_path)
    switches(fleet, name, {"bbm_seconds": 6})
    before = fleet.root.joinpath("inventory.json").read_bytes()
    dry = fleet.run("upgrade", name, "--to", TARGET, "--dry-run")
    assert dry.stdout.splitlines()[0] == f"{name}: 18.8.11 -> 18.11.11 -> {TARGET}"
    assert "gitlab-standin:18.11.11-ce.0" in dry.stdout
    assert fleet.root.joinpath("inventory.json").read_bytes() == before
    assert backups(fleet, name) == []
    # Refused in one line, changing nothing: a downgrade, and a version nobody released.
    for bad, said in (("18.5.7", "is older than 18.8.11"), ("19.0.99", "not a version")):
        proc = fleet.run("upgrade", name, "--to", bad, check=False)
        assert proc.returncode == 2 and said in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert fleet.root.joinpath("inventory.json").read_bytes() == before

    proc = fleet.run("upgrade", name, "--to", TARGET, timeout=900)
    assert proc.returncode == 0, proc.stderr
    taken = backups(fleet, name)
    assert [b["gitlab_version"] for b in taken] == ["18.8.11", "18.11.11"]
    (row,) = fleet.ls()
    assert (row["version"], row["image"]) == (TARGET, f"{fleet.images.standin_other}")
    assert row["state"] == "healthy" and row["upgrade_target"] is None
    log = fleet.events(name)
    messages = [m for _, c, m in log]
    assert not any("upgrade-check refused" in m for m in messages)  # never a skipped stop
    # The second hop's migrations began only once the first hop's had finished.
    finished = [i for i, (_, c, m) in enumerate(log) if c == "sidekiq" and m.endswith("finished")]
    second = messages.index(f"start 18.11.11 -> {TARGET}")
    assert len(finished) >= 2 and max(finished[:2]) < second
    assert "waiting for 2 batched background migration(s)" in proc.stderr
    data_is_intact(fleet, name, commits, tmp_path / "after")
    assert gitlab_containers(engine, name) == [f"gitlab-{name}"]


def test_a_killed_upgrade_resumes_at_its_hop(
    make_fleet: Callable[[], Fleet], tmp_path: Path, engine: DockerClient
) -> None:
    fleet, name, commits = fleet_on_18_8(make_fleet, tmp_path)
    switches(fleet, name, {"migrate_seconds": 6, "bbm_seconds": 1})
    proc = fleet.popen("upgrade", name, "--to", TARGET)
    # Killed while the first hop's migrations run in the new container.
    assert wait_until(
        lambda: any(m.startswith("start 18.8.11 ->") for _, c, m in fleet.events(name)), 300
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (row,) = fleet.ls()
    assert row["state"] == "upgrade-failed" and row["upgrade_target"] == TARGET
    again = fleet.run("upgrade", name, "--to", TARGET, timeout=900)
    assert "resuming its upgrade to 19.0.1 at hop 1 of 2" in again.stderr
    (row,) = fleet.ls()
    assert (row["version"], row["state"]) == (TARGET, "healthy")
    # One backup per hop: the resumed hop did not take a second one.
    assert [b["gitlab_version"] for b in backups(fleet, name)] == ["18.8.11", "18.11.11"]
    assert gitlab_containers(engine, name) == [f"gitlab-{name}"]
    data_is_intact(fleet, name, commits, tmp_path / "after")


def test_a_failed_hop_with_rollback_ends_healthy_on_the_starting_version(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    fleet, name, commits = fleet_on_18_8(make_fleet, tmp_path)
    # The first hop passes; the second's migrations fail half-way (the schema moved).
    switches(fleet, name, {"bbm_seconds": 1, "migration_fail_to": TARGET})
    proc = fleet.run(
        "upgrade", name, "--to", TARGET, "--rollback-on-failure", check=False, timeout=900
    )
    assert proc.returncode == 8, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("girofle:")]
    assert "failed at hop 2 of 2 (to 19.0.1)" in line and "all later migrations canceled" in line
    assert f"back on {fleet.images.standin_before_stop}" in line
    (row,) = fleet.ls()
    assert (row["version"], row["state"], row["upgrade_target"]) == ("18.8.11", "healthy", None)
    data_is_intact(fleet, name, commits, tmp_path / "after")
    # The failed volumes are kept for a post-mortem, never deleted.
    root = fleet.data_root / f"noeud-gitlab-{name}"
    assert [p.name.startswith("upgrade-failed-") for p in root.iterdir()].count(True) == 1


def test_upgrade_all_moves_every_instance_and_ends_with_a_summary(
    make_fleet: Callable[[], Fleet],
) -> None:
    fleet = make_fleet()
    fleet.env["GIROFLE_GITLAB_IMAGE"] = fleet.images.standin_before_stop
    names = sorted(instance_name("all") for _ in range(2))
    fleet.init("--first-instance", names[0], routing="ports")
    fleet.run("new-stack", names[1])
    proc = fleet.run("upgrade", "--all", "--to", "18.11.11", "--json", timeout=900)
    outcomes = json.loads(proc.stdout)
    assert [(o["name"], o["ok"], o["detail"]) for o in outcomes] == [
        (n, True, "18.8.11 -> 18.11.11 (1 hop)") for n in names
    ]
    assert {r["name"]: r["version"] for r in fleet.ls()} == dict.fromkeys(names, "18.11.11")
    # A second run has nothing left to do.
    again = json.loads(fleet.run("upgrade", "--all", "--to", "18.11.11", "--json").stdout)
    assert [o["detail"] for o in again] == ["already on 18.11.11"] * 2

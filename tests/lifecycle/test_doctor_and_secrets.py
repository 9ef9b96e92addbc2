"""doctor's checks, two processes on one name, and where the root password may (not) be."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable

import pytest
from python_on_whales import DockerClient

from tests.fleet import Fleet, instance_name

pytestmark = pytest.mark.engine


def test_doctor_passes_then_names_a_port_taken_by_another_program(
    make_fleet: Callable[[], Fleet],
) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance")
    name = instance_name()
    fleet.run("new-stack", name)
    checks = {c["check"]: c for c in json.loads(fleet.run("doctor", "--json").stdout)}
    assert all(c["ok"] for c in checks.values()), checks
    assert {"engine", "compose", "disk", "address 127.0.0.1"} <= set(checks)
    ssh = fleet.inventory()["instances"][name]["ssh"]
    assert checks[f"port 127.0.0.1:{ssh['port']}"]["detail"] == f"held by {name}"

    fleet.run("stop", name)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ssh["port"]))
        squatter.listen()
        proc = fleet.run("doctor", "--json", check=False)
    assert proc.returncode == 1
    failed = [c for c in json.loads(proc.stdout) if not c["ok"]]
    assert [c["check"] for c in failed] == [f"port 127.0.0.1:{ssh['port']}"]
    assert "used by another program" in failed[0]["detail"]
    assert proc.stderr.strip().splitlines() == [
        f"girofle: doctor found 1 problem(s): port 127.0.0.1:{ssh['port']}"
    ]


def test_two_processes_for_one_name_make_one_instance(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance")
    name = instance_name()
    procs = [fleet.popen("new-stack", name) for _ in range(2)]
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in procs)  # type: ignore[union-attr]
    assert [rc for rc, _ in results] == [0, 3] or [rc for rc, _ in results] == [0, 2], results
    loser = results[1][1].strip().splitlines()[-1]
    assert "busy: another girofle process" in loser or "already exists" in loser
    assert [(r["name"], r["state"]) for r in fleet.ls()] == [(name, "healthy")]
    assert len(engine.container.list(all=True, filters=[("name", f"^/?gitlab-{name}$")])) == 1


def test_the_root_password_lives_only_in_its_0600_file(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet = make_fleet()
    first = instance_name("first")
    init = fleet.init("--first-instance", first)
    secret_file = fleet.root / "secrets" / "instances" / first / "root_password"
    password = secret_file.read_text().strip()
    assert len(password) >= 24
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert secret_file.parent.stat().st_mode & 0o777 == 0o700
    assert password not in init.stdout + init.stderr
    for path in (fleet.root / "stacks").rglob("*"):
        if path.is_file():
            assert password not in path.read_text(), path
    assert password not in (fleet.root / "inventory.json").read_text()
    inspected = subprocess.run(
        ["docker", "inspect", f"gitlab-{first}"], capture_output=True, text=True, check=True
    ).stdout
    assert password not in inspected  # neither labels nor environment nor command
    logs = fleet.data_root / f"noeud-gitlab-{first}/mapping-volumes/log"
    for path in logs.rglob("*"):
        if path.is_file():
            assert password not in path.read_text(errors="replace"), path
    # GitLab did get it: the stand-in created root with it, read from the mounted secret.
    container = engine.container.inspect(f"gitlab-{first}")
    mounted = engine.execute(container, ["cat", "/run/secrets/gitlab_root_password"])
    assert str(mounted).strip() == password

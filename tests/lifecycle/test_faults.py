"""Concurrency, an instance that never turns healthy, and a SIGKILL halfway."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable

import pytest
from python_on_whales import DockerClient

from tests.fleet import Fleet, instance_name
from tests.helpers import HOME_LABEL, wait_until

pytestmark = pytest.mark.engine


def test_ten_new_stacks_at_once(make_fleet: Callable[[], Fleet]) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance")
    names = [instance_name() for _ in range(10)]
    procs = [fleet.popen("new-stack", name, "--json") for name in names]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert [rc for rc, _, _ in results] == [0] * 10, [err for _, _, err in results]
    printed = [json.loads(out) for _, out, _ in results]
    assert len({(p["ssh"]["address"], p["ssh"]["port"]) for p in printed}) == 10
    rows = fleet.ls()
    assert sorted(r["name"] for r in rows) == sorted(names)
    assert {r["state"] for r in rows} == {"healthy"}
    inventory = fleet.inventory()["instances"]
    assert {i["state"] for i in inventory.values()} == {"running"}
    assert len({i["ssh"]["port"] for i in inventory.values()}) == 10


def test_an_instance_that_never_turns_healthy(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance", "-c", "gitlab.health_timeout=8")
    healthy, sick = instance_name("ok"), instance_name("sick")
    fleet.run("new-stack", healthy)
    started = time.monotonic()
    proc = fleet.run("new-stack", sick, "--image", fleet.images.standin_unhealthy, check=False)
    elapsed = time.monotonic() - started
    assert proc.returncode == 5
    (line,) = proc.stderr.strip().splitlines()[-1:]
    assert f"gitlab-{sick} is not healthy after" in line
    assert "last health checks:" in line
    assert elapsed < 8 + 30  # the timeout, plus compose up and teardown
    rows = {r["name"]: r["state"] for r in fleet.ls()}
    assert rows == {healthy: "healthy", sick: "failed"}
    container = engine.container.inspect(f"gitlab-{sick}")
    assert not container.state.running
    assert fleet.inventory()["instances"][sick]["state"] == "failed"


def test_sigkill_halfway_then_rerun_converges(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance")
    name = instance_name()
    proc = fleet.popen("new-stack", name)

    def container_created() -> bool:
        return bool(engine.container.list(all=True, filters=[("name", f"^/?gitlab-{name}$")]))

    # Kill once the engine has the container but before Girofle recorded it healthy.
    assert wait_until(container_created, timeout=60, interval=0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert fleet.inventory()["instances"][name]["state"] == "creating"
    fleet.run("new-stack", name)
    rows = fleet.ls()
    assert [(r["name"], r["state"]) for r in rows] == [(name, "healthy")]
    containers = engine.container.list(
        all=True,
        filters=[("label", f"{HOME_LABEL}={fleet.home_id}"), ("label", "io.girofle.role=gitlab")],
    )
    assert [c.name for c in containers] == [f"gitlab-{name}"]
    assert fleet.inventory()["instances"][name]["state"] == "running"


def test_a_container_removed_behind_girofles_back_shows_missing(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance")
    name = instance_name()
    fleet.run("new-stack", name)
    engine.container.remove(f"gitlab-{name}", force=True)
    assert [(r["name"], r["state"]) for r in fleet.ls()] == [(name, "missing")]
    fleet.run("start", name)
    assert [(r["name"], r["state"]) for r in fleet.ls()] == [(name, "healthy")]

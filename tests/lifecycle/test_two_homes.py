"""Two homes on one engine: what one allocates, the other sees (ports and subnets)."""

from __future__ import annotations

import random
import signal
from collections.abc import Callable
from ipaddress import IPv4Network
from typing import Any

import pytest
from python_on_whales import DockerClient

from tests.fleet import Fleet, instance_name
from tests.helpers import wait_until

pytestmark = pytest.mark.engine


def shared_ranges() -> tuple[str, ...]:
    """The same SSH and HTTP ranges for both homes (the defaults' instance pool is shared)."""
    first = random.randrange(41000, 60000, 500)
    return (
        "-c",
        f"ssh_ports.first={first}",
        "-c",
        f"ssh_ports.last={first + 100}",
        "-c",
        f"http_ports.first={first + 200}",
        "-c",
        f"http_ports.last={first + 300}",
    )


def two_homes(make_fleet: Callable[[], Fleet]) -> tuple[Fleet, Fleet]:
    ranges = shared_ranges()
    homes = (make_fleet(), make_fleet())
    for home in homes:
        home.init("--no-first-instance", *ranges, routing="ports")
    return homes


def claims(fleet: Fleet) -> list[dict[str, Any]]:
    return list(fleet.inventory()["instances"].values())


def test_five_new_stacks_in_each_of_two_homes_at_once(make_fleet: Callable[[], Fleet]) -> None:
    first, second = two_homes(make_fleet)
    jobs = [(home, instance_name()) for home in (first, second) for _ in range(5)]
    procs = [home.popen("new-stack", name, "--json") for home, name in jobs]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert [rc for rc, _ in results] == [0] * 10, [err for _, err in results]
    for home in (first, second):
        assert {r["state"] for r in home.ls()} == {"healthy"}
    everything = claims(first) + claims(second)
    pairs = [(i[k]["address"], i[k]["port"]) for i in everything for k in ("ssh", "http")]
    assert len(set(pairs)) == 20, pairs
    subnets = [IPv4Network(i["subnet"]) for i in everything]
    assert not [(a, b) for a in subnets for b in subnets if a is not b and a.overlaps(b)]


def test_a_stopped_container_keeps_its_port_from_another_home(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    first, second = two_homes(make_fleet)
    held = instance_name("held")
    first.run("new-stack", held)
    port = first.inventory()["instances"][held]["ssh"]["port"]
    engine.container.stop(f"gitlab-{held}")  # behind Girofle's back: nothing listens now
    refused = second.run("new-stack", instance_name(), "--ssh-port", str(port), check=False)
    assert refused.returncode == 3, refused.stderr
    assert "already allocated to another instance or container" in refused.stderr
    other = instance_name()
    second.run("new-stack", other)
    assert second.inventory()["instances"][other]["ssh"]["port"] != port


def test_a_resumed_commission_reallocates_what_another_home_took(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    first, second = two_homes(make_fleet)
    name = instance_name("resumed")
    proc = first.popen("new-stack", name)
    # Killed once its pairs are recorded; then what the engine held for it goes, as if the
    # kill had come before compose create: its record is all that claims them now.
    wait_until(lambda: name in first.inventory().get("instances", {}), timeout=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    project = f"girofle-{first.home_id}-{name}"
    leftovers = engine.container.list(
        all=True, filters=[("label", f"com.docker.compose.project={project}")]
    )
    if leftovers:
        engine.container.remove(leftovers, force=True)
    for network in engine.network.list(filters=[("name", project)]):
        network.remove()
    recorded = first.inventory()["instances"][name]
    assert recorded["state"] == "creating"

    taker = instance_name("taker")
    second.run("new-stack", taker, "--ssh-port", str(recorded["ssh"]["port"]))
    took = second.inventory()["instances"][taker]

    rerun = first.run("new-stack", name)
    assert f"{name}: what it was given is taken now; re-allocated" in rerun.stderr
    resumed = first.inventory()["instances"][name]
    assert resumed["state"] == "running"
    assert resumed["ssh"]["port"] != took["ssh"]["port"]
    assert not IPv4Network(resumed["subnet"]).overlaps(IPv4Network(took["subnet"]))
    assert {r["name"]: r["state"] for r in first.ls()} == {name: "healthy"}

"""The fleet on a real 2-node Docker Swarm (this host's engine the manager, a second dockerd
the worker): placement across nodes, routing through Traefik's swarm provider on the
manager, work in an instance on the worker through Swarm jobs, and `ls` with nodes."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from girofle.config import ToolsSettings
from girofle.tools_image import ensure_tools_image
from tests.fleet import TOOLS_IMAGE, Fleet, instance_name
from tests.harness.swarm import TwoNodeSwarm, missing_tools, two_node_swarm
from tests.images.build import BuiltImages
from tests.lifecycle.test_fleet import assert_reconfigured_after_healthy

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def swarm(engine: DockerClient, images: BuiltImages) -> Iterator[TwoNodeSwarm]:
    missing = missing_tools()
    if missing or os.geteuid() != 0:
        message = f"a 2-node swarm needs root and {', '.join(missing) or 'nothing more'}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # Jobs on the nodes run Girofle's tools image: every node must hold it.
    ensure_tools_image(ToolsSettings(base_image=images.base, image=TOOLS_IMAGE))
    with two_node_swarm([images.standin, TOOLS_IMAGE]) as made:
        yield made


def swarm_fleet(make_fleet: Callable[[], Fleet]) -> Fleet:
    fleet = make_fleet()
    fleet.init(
        "--no-first-instance",
        "-c",
        "target=swarm",
        # Scheduled backups on a swarm are not there yet; the suite's remote has no place here.
        "-c",
        "backups.scheduler=none",
        "-c",
        "instance_networks.pool=10.234.0.0/16",
    )
    return fleet


def worker_container(swarm: TwoNodeSwarm, name: str) -> str:
    """The ID of instance ``name``'s container, asked of the worker's own engine."""
    ids = swarm.worker(
        "ps", "-q", "--filter", f"label=io.girofle.instance={name}", "--filter", "status=running"
    ).stdout.split()
    assert len(ids) == 1, f"{name}: {ids} on the worker"
    return ids[0]


def worker_events(swarm: TwoNodeSwarm, name: str) -> list[tuple[str, str, str]]:
    """The stand-in's event log of an instance that runs on the worker (its log volume is
    on the worker's disk, not this host's)."""
    out = swarm.worker(
        "exec", worker_container(swarm, name), "cat", "/var/log/gitlab/standin/events.log"
    ).stdout
    return [tuple(line.split(" ", 2)) for line in out.splitlines()]  # type: ignore[misc]


def on_worker_disk(swarm: TwoNodeSwarm, path: Path) -> bool:
    """Whether ``path`` exists on the worker's disk (a bind mount whose source is missing
    is refused; -v would create it)."""
    proc = swarm.worker(
        "run", "--rm", "--mount", f"type=bind,src={path},dst=/x", TOOLS_IMAGE, "true", check=False
    )
    assert proc.returncode == 0 or "bind source path does not exist" in proc.stderr, proc.stderr
    return proc.returncode == 0


def ssh_banner(address: str, port: int) -> bytes:
    with socket.create_connection((address, port), timeout=10) as conn:
        return conn.recv(64)


def test_four_instances_across_two_nodes_answer_through_the_managers_edge(
    swarm: TwoNodeSwarm, make_fleet: Callable[[], Fleet]
) -> None:
    fleet = swarm_fleet(make_fleet)
    asked = instance_name("w")
    fleet.run("new-stack", asked, "--node", swarm.worker_hostname)
    placed = [instance_name(p) for p in "abc"]
    for name in placed:  # Girofle balances: the manager first, then one each
        fleet.run("new-stack", name)
    rows = {row["name"]: row for row in fleet.ls()}
    assert {row["state"] for row in rows.values()} == {"healthy"}, rows
    nodes = [row["node"] for row in rows.values()]
    assert nodes.count(swarm.worker_hostname) == 2, nodes
    manager = {n for n in nodes if n != swarm.worker_hostname}
    assert len(manager) == 1 and None not in manager, nodes
    listed = {n["hostname"]: n for n in json.loads(fleet.run("nodes", "--json").stdout)}
    assert sorted(listed[swarm.worker_hostname]["instances"]) == sorted(
        n for n, r in rows.items() if r["node"] == swarm.worker_hostname
    )
    assert asked in listed[swarm.worker_hostname]["instances"]
    assert {n["state"] for n in listed.values()} == {"ready"}

    for name, row in rows.items():
        (url,) = row["urls"]
        host = url.split("//")[1].split(":")[0]
        answer = fleet.edge(host)  # Traefik on the manager, Girofle's CA
        assert answer.status == 200, f"{host}: {answer}"
        assert f"https://{host}" in answer.body  # from this very instance
        address, port = row["ssh"].rsplit(":", 1)
        on_worker = row["node"] == swarm.worker_hostname
        assert address == (swarm.worker_address if on_worker else swarm.manager_address)
        # SSH is published on its node only (host mode), and sshd answers there.
        assert ssh_banner(address, int(port)).startswith(b"SSH-2.0-")
        if on_worker:
            # Girofle ran gitlab-ctl reconfigure there, through a job, once healthy.
            log = worker_events(swarm, name)
            first_pass = next(t for t, c, m in log if c == "healthcheck" and m == "pass")
            runs = [t for t, c, m in log if c == "reconfigure" and m == "start source=exec"]
            assert runs and runs[0] > first_pass, log
            # Its data is on the worker's disk, not on the manager's.
            data = fleet.data_root / f"noeud-gitlab-{name}/mapping-volumes/data"
            assert not any(data.iterdir()), f"{name}: data on the manager: {list(data.iterdir())}"
        else:
            assert_reconfigured_after_healthy(fleet, name)


def test_reconfigure_stop_start_and_rm_of_an_instance_on_the_worker(
    swarm: TwoNodeSwarm, make_fleet: Callable[[], Fleet]
) -> None:
    fleet = swarm_fleet(make_fleet)
    name = instance_name("w")
    fleet.run("new-stack", name, "--node", swarm.worker_hostname)
    fleet.run("reconfigure", name, "--set", "gitlab_rails.time_zone=Europe/Paris")
    container = worker_container(swarm, name)
    rb = swarm.worker("exec", container, "cat", "/girofle/gitlab.rb").stdout
    assert "gitlab_rails['time_zone'] = 'Europe/Paris'" in rb  # the node's copy
    runs = [m for _, c, m in worker_events(swarm, name) if c == "reconfigure"]
    assert len([m for m in runs if m == "start source=exec"]) == 2, runs

    fleet.run("stop", name)
    assert fleet.ls()[0]["state"] == "stopped"
    assert swarm.worker("ps", "-q", "--filter", f"label=io.girofle.instance={name}").stdout == ""
    fleet.run("start", name)
    (row,) = fleet.ls()
    assert (row["state"], row["node"]) == ("healthy", swarm.worker_hostname)
    # The data survived on the worker: the new container reads the same gitlab.rb and VERSION.
    assert worker_container(swarm, name) != container

    # What the swarm target cannot do yet is refused in one line, changing nothing.
    for refused in (("backup", name), ("rm", name), ("drill", name)):
        proc = fleet.run(*refused, check=False)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "target: swarm" in proc.stderr
    assert fleet.ls()[0]["state"] == "healthy"

    fleet.run("rm", name, "--no-backup")
    assert fleet.ls() == []
    root = fleet.data_root / f"noeud-gitlab-{name}"
    assert on_worker_disk(swarm, root / "mapping-volumes" / "data" / "gitlab-rails")  # kept
    fleet.run("rm", name, "--purge", "--yes")
    assert not on_worker_disk(swarm, root)  # deleted there, not only on this host
    services = DockerClient().service.list(filters=[("label", f"io.girofle.instance={name}")])
    assert services == []


def test_an_instance_whose_node_is_down_says_so(
    swarm: TwoNodeSwarm, make_fleet: Callable[[], Fleet]
) -> None:
    """Last in the module: the worker's host becomes unreachable."""
    fleet = swarm_fleet(make_fleet)
    on_worker, on_manager = instance_name("w"), instance_name("m")
    fleet.run("new-stack", on_worker, "--node", swarm.worker_hostname)
    fleet.run("new-stack", on_manager, "--node", swarm.manager_id)
    swarm.cut_worker_off()
    states = {row["name"]: (row["state"], row["node"]) for row in fleet.ls()}
    assert states[on_worker] == ("node down", swarm.worker_hostname)
    assert states[on_manager][0] == "healthy"
    listed = {n["hostname"]: n for n in json.loads(fleet.run("nodes", "--json").stdout)}
    assert listed[swarm.worker_hostname]["state"] == "down"
    assert listed[swarm.worker_hostname]["instances"] == [on_worker]
    # A new instance goes to a node that is up, and one asked of a node that is down is refused.
    assert fleet.run("new-stack", instance_name("x"), "--dry-run").returncode == 0
    refused = fleet.run(
        "new-stack", instance_name("y"), "--node", swarm.worker_hostname, check=False
    )
    assert refused.returncode == 3 and "down" in refused.stderr, refused.stderr

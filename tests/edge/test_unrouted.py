"""new-stack prints a URL only once it answers through Traefik, and says so when it does not;
doctor checks the edge, and edge down / edge up remove and restore it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from python_on_whales import DockerClient

from tests.fleet import Fleet, instance_name
from tests.helpers import wait_until

pytestmark = pytest.mark.engine


def test_a_url_that_does_not_answer_is_not_printed(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance", "-c", "backups.scheduler=none")
    traefik = f"girofle-traefik-{fleet.home_id}"
    engine.container.stop(traefik)  # nothing routes now
    name = instance_name("u")
    proc = fleet.run("new-stack", name)
    host = f"gitlab.scm.{name}.kytes.io"
    assert proc.stdout == ""  # no URL that does not answer
    assert f"Traefik does not route {host} after 30 s" in proc.stderr
    assert f"https://{host}:{fleet.https_port}/ does not answer through Traefik yet" in proc.stderr
    assert [(r["name"], r["state"]) for r in fleet.ls()] == [(name, "healthy")]

    assert not edge_check(fleet)["ok"]

    fleet.run("edge", "up")  # Traefik applies what its providers see after a short throttle
    assert wait_until(lambda: fleet.edge(host).status == 200, timeout=30)
    assert edge_check(fleet) == {"check": "edge", "ok": True, "detail": edge_check(fleet)["detail"]}

    refused = fleet.run("edge", "down", check=False)  # the instance is on the proxy network
    assert refused.returncode == 3 and "still run behind the edge" in refused.stderr
    assert engine.container.inspect(traefik).state.running
    fleet.run("stop", name)
    fleet.run("edge", "down")
    proxy = f"girofle-{fleet.home_id}-proxy"
    assert not engine.container.list(all=True, filters=[("name", f"^/?{traefik}$")])
    assert not engine.network.list(filters=[("name", f"^{proxy}$")])
    fleet.run("edge", "up")
    fleet.run("start", name)
    assert wait_until(lambda: fleet.edge(host).status == 200, timeout=30)


def edge_check(fleet: Fleet) -> dict[str, object]:
    checks = json.loads(fleet.run("doctor", "--json", check=False).stdout)
    return next(c for c in checks if c["check"] == "edge")  # type: ignore[no-any-return]


def test_uninstall_removes_the_home_from_the_engine_then_purge_from_the_disk(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet = make_fleet()
    name = instance_name("u")
    fleet.init("--first-instance", name, "-c", "backups.scheduler=none")
    label = [("label", f"io.girofle.home={fleet.home_id}")]
    mine = [c.name for c in engine.container.list(all=True, filters=label)]
    assert f"gitlab-{name}" in mine and f"girofle-traefik-{fleet.home_id}" in mine

    refused = fleet.run("uninstall", input_text="n\n", check=False)
    assert refused.returncode == 1 and engine.container.inspect(f"gitlab-{name}").state.running

    plan = fleet.run("uninstall", "--dry-run").stdout
    assert f"take a final backup of {name}" in plan and "remove the edge" in plan
    fleet.run("uninstall", "--yes")
    # By name, one at a time: listing the whole engine raced with the other test process,
    # whose containers could vanish between the listing and their lazy inspection.
    assert [n for n in mine if engine.container.exists(n)] == []
    assert not engine.network.list(filters=label)
    assert fleet.inventory()["instances"][name]["state"] == "decommissioned"
    instance_dir = fleet.data_root / f"noeud-gitlab-{name}"
    assert (instance_dir / "mapping-volumes" / "data").is_dir()  # data kept
    assert len(list((instance_dir / "bckups").iterdir())) == 1  # the final backup
    fleet.run("backup", "--girofle")
    fleet.run("uninstall", "--yes")  # a rerun is harmless

    fleet.run("uninstall", "--purge", "--yes")
    # The home is gone but for Girofle's own backups (the data root is <home>/data here).
    assert {p.name for p in fleet.root.iterdir()} == {"data"}
    assert {p.name for p in fleet.data_root.iterdir()} == {"sauvegardes"}
    assert not instance_dir.exists()
    assert list((fleet.data_root / "sauvegardes").iterdir())
    again = fleet.run("uninstall", "--yes", check=False)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"girofle: {fleet.root} holds no Girofle home: nothing to uninstall"
    ]

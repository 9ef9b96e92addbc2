"""new-stack prints a URL only once it answers through Traefik, and says so when it does not;
doctor checks the edge, and edge-down / edge-up remove and restore it."""

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

    fleet.run("edge-up")  # Traefik applies what its providers see after a short throttle
    assert wait_until(lambda: fleet.edge(host).status == 200, timeout=30)
    assert edge_check(fleet) == {"check": "edge", "ok": True, "detail": edge_check(fleet)["detail"]}

    refused = fleet.run("edge-down", check=False)  # the instance is on the proxy network
    assert refused.returncode == 3 and "still run behind the edge" in refused.stderr
    assert engine.container.inspect(traefik).state.running
    fleet.run("stop", name)
    fleet.run("edge-down")
    proxy = f"girofle-{fleet.home_id}-proxy"
    assert not engine.container.list(all=True, filters=[("name", f"^/?{traefik}$")])
    assert not engine.network.list(filters=[("name", f"^{proxy}$")])
    fleet.run("edge-up")
    fleet.run("start", name)
    assert wait_until(lambda: fleet.edge(host).status == 200, timeout=30)


def edge_check(fleet: Fleet) -> dict[str, object]:
    checks = json.loads(fleet.run("doctor", "--json", check=False).stdout)
    return next(c for c in checks if c["check"] == "edge")  # type: ignore[no-any-return]

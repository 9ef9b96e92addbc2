"""new-stack prints a URL only once it answers through Traefik, and says so when it does not."""

from __future__ import annotations

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
    engine.container.stop(f"girofle-traefik-{fleet.home_id}")  # nothing routes now
    name = instance_name("u")
    proc = fleet.run("new-stack", name)
    host = f"gitlab.scm.{name}.kytes.io"
    assert proc.stdout == ""  # no URL that does not answer
    assert f"Traefik does not route {host} after 30 s" in proc.stderr
    assert f"https://{host}:{fleet.https_port}/ does not answer through Traefik yet" in proc.stderr
    assert [(r["name"], r["state"]) for r in fleet.ls()] == [(name, "healthy")]

    fleet.run("edge-up")  # Traefik applies what its providers see after a short throttle
    assert wait_until(lambda: fleet.edge(host).status == 200, timeout=30)

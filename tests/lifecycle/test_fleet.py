"""A fleet commissioned through the CLI, browsed through the real Traefik or its own ports."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.fleet import Fleet, instance_name
from tests.helpers import http

pytestmark = pytest.mark.engine


def assert_reconfigured_after_healthy(fleet: Fleet, instance: str) -> None:
    log = fleet.events(instance)
    first_pass = next(t for t, c, m in log if c == "healthcheck" and m == "pass")
    exec_reconfigure = [t for t, c, m in log if c == "reconfigure" and m == "start source=exec"]
    assert exec_reconfigure, f"{instance}: girofle never ran gitlab-ctl reconfigure"
    assert exec_reconfigure[0] > first_pass


def assert_compose_config_passes(fleet: Fleet) -> None:
    stacks = sorted((fleet.root / "stacks").glob("*/docker-compose.yml"))
    assert stacks
    for stack in stacks:
        proc = subprocess.run(
            ["docker", "compose", "-f", str(stack), "config", "--quiet"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"{stack}: {proc.stderr}"


def commission(fleet: Fleet, routing: str) -> list[str]:
    first = instance_name("first")
    fleet.init("--first-instance", first, routing=routing)
    names = [first]
    for _ in range(3):
        name = instance_name()
        urls = fleet.run("new-stack", name, "--project", "web", "--project", "docs").stdout.split()
        names.append(name)
        if routing == "traefik":
            # new-stack prints a URL only once it answers through Traefik: no waiting here.
            for url in urls:
                host = url.split("//")[1].split(":")[0]
                answer = fleet.edge(host)
                assert answer.status == 200, (host, answer)
    return names


def test_traefik_fleet_routes_each_hostname_to_its_instance(
    make_fleet: Callable[[], Fleet],
) -> None:
    fleet = make_fleet()
    names = commission(fleet, "traefik")
    rows = {row["name"]: row for row in fleet.ls()}
    assert sorted(rows) == sorted(names)
    assert {row["state"] for row in rows.values()} == {"healthy"}
    all_urls = [url for row in rows.values() for url in row["urls"]]
    assert len(all_urls) == len(set(all_urls)) == 1 + 3 * 2
    assert len({row["ssh"] for row in rows.values()}) == 4
    for name, row in rows.items():
        own_host = row["urls"][0].split("//")[1].split(":")[0]
        for url in row["urls"]:
            host = url.split("//")[1].split(":")[0]
            answer = fleet.edge(host)
            assert answer.status == 200, f"{host}: {answer}"
            # The page names the instance's external URL: it came from this instance.
            assert f"https://{own_host}" in answer.body
            others = [o for n, r in rows.items() if n != name for o in r["urls"]]
            assert not any(o.split(":")[1] in answer.body for o in others)
        assert_reconfigured_after_healthy(fleet, name)
    # Traefik has no certificate for a name it does not route (curl -k to get past that).
    assert fleet.edge("nope.scm.x.kytes.io").status == 0
    assert fleet.edge("nope.scm.x.kytes.io", insecure=True).status == 404
    assert_compose_config_passes(fleet)


def test_ports_fleet_answers_on_each_instances_own_port(make_fleet: Callable[[], Fleet]) -> None:
    fleet = make_fleet()
    names = commission(fleet, "ports")
    rows = {row["name"]: row for row in fleet.ls()}
    assert sorted(rows) == sorted(names)
    assert {row["state"] for row in rows.values()} == {"healthy"}
    assert len({row["http"] for row in rows.values()}) == 4
    assert len({row["ssh"] for row in rows.values()} | {row["http"] for row in rows.values()}) == 8
    for name, row in rows.items():
        (url,) = row["urls"]
        assert url == f"http://{row['http']}/"
        answer = http(f"{url}help")
        assert answer.status == 200
        # external_url is the instance's own pair, so the page proves which one answered.
        assert f'href="http://{row["http"]}"' in answer.body
        assert_reconfigured_after_healthy(fleet, name)
    assert_compose_config_passes(fleet)

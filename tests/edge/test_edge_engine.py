"""The edge on the real engine and the real Traefik: HTTPS with Girofle's CA, redirects,
the dashboard behind basic auth, the route table against the labels, and no secret in clear."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import DockerClient

from girofle.edge.check import check_configuration
from tests.fleet import Fleet, instance_name
from tests.lifecycle.test_fleet import assert_compose_config_passes

pytestmark = pytest.mark.engine

PROJECTS = ("web", "docs")


@pytest.fixture(scope="module")
def edge_fleet(module_fleet: Fleet) -> Iterator[Fleet]:
    """Three instances with two projects each, TLS mode selfsigned (the default)."""
    fleet = module_fleet
    names = [instance_name("e") for _ in range(3)]
    project_args = [arg for p in PROJECTS for arg in ("--project", p)]
    fleet.init("--no-first-instance", "-c", "backups.scheduler=none")
    for name in names:
        fleet.run("new-stack", name, *project_args)
    yield fleet


def hostnames(fleet: Fleet) -> dict[str, list[str]]:
    rows = fleet.ls()
    return {row["name"]: [u.split("//")[1].split(":")[0] for u in row["urls"]] for row in rows}


def container_labels(engine: DockerClient, fleet: Fleet) -> dict[str, dict[str, str]]:
    containers = engine.container.list(
        filters=[("label", f"io.girofle.home={fleet.home_id}"), ("label", "io.girofle.role=gitlab")]
    )
    return {c.config.labels["io.girofle.instance"]: dict(c.config.labels) for c in containers}


def test_each_hostname_answers_over_https_from_its_own_instance(edge_fleet: Fleet) -> None:
    hosts = hostnames(edge_fleet)
    assert len(hosts) == 3 and all(len(h) == 2 for h in hosts.values())
    for name, own in hosts.items():
        for host in own:
            answer = edge_fleet.edge(host)
            assert answer.status == 200, (host, answer)
            # /help names the instance's external URL (its first hostname): it answered.
            assert f"https://{own[0]}:{edge_fleet.https_port}" in answer.body
            others = [h for n, hs in hosts.items() if n != name for h in hs]
            assert not any(other in answer.body for other in others)


def test_an_unknown_hostname_gets_404(edge_fleet: Fleet) -> None:
    unknown = "nope.scm.nothing.kytes.io"
    assert edge_fleet.edge(unknown).status == 0  # no certificate of Girofle's CA names it
    assert edge_fleet.edge(unknown, insecure=True).status == 404


def test_plain_http_redirects_to_https(edge_fleet: Fleet) -> None:
    host = next(iter(hostnames(edge_fleet).values()))[0]
    answer = edge_fleet.edge(host, scheme="http")
    assert answer.status in (301, 308)
    assert answer.location == f"https://{host}:{edge_fleet.https_port}/help"


def dashboard_password(fleet: Fleet) -> str:
    return (fleet.root / "secrets" / "home" / "dashboard" / "password").read_text().strip()


def test_the_dashboard_needs_its_generated_credentials(edge_fleet: Fleet) -> None:
    host = "traefik.kytes.io"
    assert edge_fleet.edge(host, "/dashboard/").status == 401
    assert edge_fleet.edge(host, "/dashboard/", user="admin:wrong").status == 401
    assert edge_fleet.edge(host, "/dashboard/", user=dashboard_password(edge_fleet)).status == 200
    secret = edge_fleet.root / "secrets" / "home" / "dashboard" / "password"
    assert secret.stat().st_mode & 0o777 == 0o600
    # The router Traefik actually runs carries the auth middleware.
    api = edge_fleet.edge(
        host, "/api/http/routers/girofle-dashboard@file", user=dashboard_password(edge_fleet)
    )
    router = json.loads(api.body)
    assert router["middlewares"] == ["girofle-dashboard-auth@file"]
    assert router["service"] == "api@internal"


def test_routes_json_matches_the_labels(edge_fleet: Fleet, engine: DockerClient) -> None:
    routes = json.loads(edge_fleet.run("routes", "--json").stdout)
    labels = container_labels(engine, edge_fleet)
    from_labels = set()
    for name, each in labels.items():
        service = each[f"traefik.http.services.{name}.loadbalancer.server.port"]
        for key, rule in each.items():
            if key.endswith(".rule"):
                router = key.split(".")[3]
                host = rule.removeprefix("Host(`").removesuffix("`)")
                assert each[f"traefik.http.routers.{router}.service"] == name
                assert each[f"traefik.http.routers.{router}.entrypoints"] == "websecure"
                from_labels.add((host, name, int(service)))
    from_routes = {
        (r["hostname"], r["instance"], r["target_port"]) for r in routes if r["kind"] == "http"
    }
    assert from_routes == from_labels and len(from_routes) == 6
    assert {r["port"] for r in routes if r["kind"] == "http"} == {edge_fleet.https_port}
    ssh = {r["instance"]: r for r in routes if r["kind"] == "ssh"}
    for row in edge_fleet.ls():
        address, port = row["ssh"].split(":")
        assert (ssh[row["name"]]["address"], ssh[row["name"]]["port"]) == (address, int(port))
    # And the labels pass Girofle's own static check, as deployed.
    assert check_configuration(labels, {}) == []


def test_traefik_logs_no_configuration_error(edge_fleet: Fleet, engine: DockerClient) -> None:
    logs = engine.container.logs(f"girofle-traefik-{edge_fleet.home_id}")
    assert "\x1b[" not in logs  # plain text (--log.nocolor), so the level reads as written
    assert " INF Starting provider *file.Provider" in logs  # the log we think it is
    assert [line for line in logs.splitlines() if " ERR " in line] == []
    # And the providers loaded what Girofle wrote: the file provider's routers and TLS.
    assert "Cannot start the provider" not in logs and "error" not in logs.lower()


def secrets_of(fleet: Fleet) -> dict[str, str]:
    """Every generated secret, in clear: root passwords, the dashboard's, the private keys."""
    found = {}
    for path in (fleet.root / "secrets").rglob("*"):
        if path.is_file() and path.suffix != ".crt":
            text = path.read_text().strip()
            found[str(path)] = text.split(":", 1)[1] if path.name == "password" else text
    for key in (fleet.root / "stacks" / "_edge" / "tls").glob("*.key"):
        found[str(key)] = key.read_text().strip()
    return found


def test_no_secret_in_clear_in_any_rendered_file_or_label(
    edge_fleet: Fleet, engine: DockerClient
) -> None:
    secrets = secrets_of(edge_fleet)
    assert len(secrets) >= 3 + 1 + 1 + 4  # root passwords, dashboard, CA key, instance keys
    for path in secrets:
        assert Path(path).stat().st_mode & 0o777 == 0o600, path
    keys = {p for p in secrets if p.endswith(".key")}
    rendered = [
        p for p in (edge_fleet.root / "stacks").rglob("*") if p.is_file() and str(p) not in keys
    ]
    assert any(p.name == "dashboard.htpasswd" for p in rendered)
    containers = engine.container.list(filters=[("label", f"io.girofle.home={edge_fleet.home_id}")])
    inspected: list[Any] = [c.config.labels for c in containers]
    inspected += [c.config.env for c in containers] + [c.config.cmd for c in containers]
    haystacks = [p.read_text() for p in rendered] + [json.dumps(i) for i in inspected]
    for where, secret in secrets.items():
        body = secret.splitlines()[1] if secret.startswith("-----") else secret
        assert not any(body in hay for hay in haystacks), f"{where} leaks"


def test_every_stack_file_passes_compose_config(edge_fleet: Fleet) -> None:
    assert_compose_config_passes(edge_fleet)


def test_ca_export_prints_the_ca_curl_trusts(edge_fleet: Fleet, tmp_path: Path) -> None:
    exported = tmp_path / "ca.pem"
    exported.write_text(edge_fleet.run("ca", "export").stdout)
    host = next(iter(hostnames(edge_fleet).values()))[0]
    proc = subprocess.run(
        [
            "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
            "--resolve", f"{host}:{edge_fleet.https_port}:127.0.0.1",
            "--cacert", str(exported), f"https://{host}:{edge_fleet.https_port}/help",
        ],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.stdout == "200", proc.stderr

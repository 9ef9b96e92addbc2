"""The static check of Traefik configuration, run over everything Girofle renders."""

from __future__ import annotations

import datetime as dt
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from girofle.config import GirofleConfig
from girofle.edge.check import check_configuration
from girofle.edge.routes import refuse_shared_hostnames
from girofle.errors import ConflictError
from girofle.home import Home
from girofle.inventory import Endpoint, Instance
from girofle.render.compose import render_edge, render_instance
from girofle.render.model import InstanceSpec

LOCAL = IPv4Address("127.0.0.1")


def config(tmp_path: Path, **extra: Any) -> GirofleConfig:
    data = {"home_id": "g1234", "data_root": str(tmp_path), "addresses": ["127.0.0.1"]}
    return GirofleConfig.model_validate({**data, **extra})


def instance(name: str, projects: list[str], port: int) -> Instance:
    return Instance(
        name=name,
        state="running",
        image="gitlab/gitlab-ce:18.11.11-ce.0",
        address=LOCAL,
        projects=projects,
        ssh=Endpoint(address=LOCAL, port=port),
        subnet=IPv4Network(f"10.213.0.{port % 10 * 16}/28"),
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


def rendered(cfg: GirofleConfig, tmp_path: Path, fleet: list[Instance]) -> list[str]:
    """The check's findings over the instances' labels and the edge's file-provider YAML."""
    labels = {}
    for each in fleet:
        files = render_instance(InstanceSpec(cfg, Home(tmp_path / "home"), each))
        compose = yaml.safe_load(files["docker-compose.yml"])
        labels[each.name] = compose["services"]["gitlab"]["labels"]
    edge = render_edge(cfg)
    documents = {
        name: yaml.safe_load(body) for name, body in edge.items() if name != "docker-compose.yml"
    }
    return check_configuration(labels, documents)


FLEET = [instance("alpha", ["web", "api"], 2201), instance("beta", ["web", "docs"], 2202)]
ACME = {"mode": "acme", "acme": {"email": "ops@example.com"}}


@pytest.mark.parametrize("tls", [{"mode": "selfsigned"}, ACME, {"mode": "none"}])
def test_everything_girofle_renders_passes(tmp_path: Path, tls: dict[str, Any]) -> None:
    assert rendered(config(tmp_path, tls=tls), tmp_path, FLEET) == []


def test_the_dashboard_router_is_whole_and_authenticated(tmp_path: Path) -> None:
    edge = render_edge(config(tmp_path))
    router = yaml.safe_load(edge["dynamic/dashboard.yml"])["http"]["routers"]["girofle-dashboard"]
    assert router["service"] == "api@internal"
    assert router["middlewares"] == ["girofle-dashboard-auth"]
    assert router["rule"] == "Host(`traefik.kytes.io`)"
    assert "--api.insecure" not in edge["docker-compose.yml"].decode()


@pytest.mark.parametrize(
    ("labels", "finding"),
    [
        ({"traefik.http.routers.r.rulez": "Host(`a.b`)"}, "not a Traefik v3 option"),
        (
            {"traefik.http.routers.r.rule": "Host(`a.b`)", "traefik.http.routers.r.service": "s"},
            "router r has no entrypoints",
        ),
        (
            {
                "traefik.http.routers.r.rule": "Host('a.b')",
                "traefik.http.routers.r.service": "s",
                "traefik.http.routers.r.entrypoints": "web",
            },
            "is not quoted with backticks",
        ),
        ({"traefik.http.services.s.loadbalancer.port": "80"}, "not a Traefik v3 option"),
        (
            {
                "traefik.http.routers.r.rule": "Host(`a.kytes.io`) || Host(`evil.com`)",
                "traefik.http.routers.r.service": "s",
                "traefik.http.routers.r.entrypoints": "web",
            },
            "is not one Host(`name`)",
        ),
    ],
)
def test_the_check_finds_what_is_wrong(labels: dict[str, str], finding: str) -> None:
    problems = check_configuration({"c": labels}, {})
    assert any(finding in p for p in problems), problems


def test_the_check_finds_a_hostname_on_two_routers() -> None:
    router = {
        "traefik.http.routers.{}.rule": "Host(`web.example.com`)",
        "traefik.http.routers.{}.service": "s",
        "traefik.http.routers.{}.entrypoints": "websecure",
    }
    one = {k.format("one"): v for k, v in router.items()}
    two = {k.format("two"): v for k, v in router.items()}
    (problem,) = check_configuration({"a": one, "b": two}, {})
    assert problem.startswith("hostname web.example.com reaches 2 routers")


def test_a_hostname_that_would_reach_two_instances_is_refused(tmp_path: Path) -> None:
    # With this pattern, instance x-y's project a and instance y's project a-x share a name.
    cfg = config(tmp_path, hostname_pattern="{project}-{instance}.{domain}")
    existing = instance("x-y", ["a"], 2201)
    with pytest.raises(ConflictError, match=r"a-x-y\.kytes\.io would reach both y and x-y"):
        refuse_shared_hostnames(cfg, [existing], instance("y", ["a-x"], 2202))
    refuse_shared_hostnames(cfg, [existing], instance("y", ["b"], 2202))  # no clash: accepted


def test_acme_renders_a_certresolver_with_the_chosen_challenge(tmp_path: Path) -> None:
    http01 = render_edge(config(tmp_path, tls=ACME))["docker-compose.yml"]
    command = yaml.safe_load(http01)["services"]["traefik"]["command"]
    assert "--certificatesresolvers.acme.acme.email=ops@example.com" in command
    assert "--certificatesresolvers.acme.acme.httpchallenge.entrypoint=web" in command
    dns01 = {
        "mode": "acme",
        "acme": {
            "email": "ops@example.com",
            "challenge": "dns",
            "dns_provider": "rfc2136",
            "env_file": "/root/acme.env",
        },
    }
    traefik = yaml.safe_load(render_edge(config(tmp_path, tls=dns01))["docker-compose.yml"])[
        "services"
    ]["traefik"]
    assert "--certificatesresolvers.acme.acme.dnschallenge.provider=rfc2136" in traefik["command"]
    assert traefik["env_file"] == ["/root/acme.env"]  # the provider's secrets stay in a file
    with pytest.raises(ValueError, match="challenge dns needs dns_provider"):
        config(tmp_path, tls={"mode": "acme", "acme": {"email": "a@b.c", "challenge": "dns"}})


def test_without_tls_routers_use_web_and_nothing_redirects(tmp_path: Path) -> None:
    cfg = config(tmp_path, tls={"mode": "none"})
    edge = yaml.safe_load(render_edge(cfg)["docker-compose.yml"])
    command = edge["services"]["traefik"]["command"]
    assert not any("redirections" in flag or "websecure" in flag for flag in command)
    files = render_instance(InstanceSpec(cfg, Home(tmp_path / "h"), FLEET[0]))
    labels = yaml.safe_load(files["docker-compose.yml"])["services"]["gitlab"]["labels"]
    assert labels["traefik.http.routers.alpha-web.entrypoints"] == "web"
    assert "traefik.http.routers.alpha-web.tls" not in labels

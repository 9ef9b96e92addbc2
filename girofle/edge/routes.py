"""The route table: which hostname (or SSH pair) reaches which instance, on which port."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from girofle.config import GirofleConfig
from girofle.errors import ConflictError
from girofle.inventory import Instance
from girofle.render import model


@dataclass(frozen=True)
class Route:
    """One way in: a hostname through Traefik, an instance's own HTTP pair, or its SSH pair."""

    kind: Literal["http", "ssh", "dashboard"]
    hostname: str | None
    instance: str | None
    url: str
    address: str  # where clients connect
    port: int  # the published port there
    target_port: int | None  # the port in the container (None: Traefik's own api@internal)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def instance_routes(config: GirofleConfig, instance: Instance) -> list[Route]:
    """An instance's routes: its hostnames (or HTTP pair), then its SSH pair."""
    routes = []
    if config.routing == "traefik":
        port = model.edge_port(config)
        for project in instance.projects:
            host = model.hostname(config, instance.name, project)
            url = model.edge_base_url(config, host) + "/"
            routes.append(
                Route("http", host, instance.name, url, str(config.traefik.address), port, 80)
            )
    elif instance.http is not None:
        url = f"http://{instance.http}/"
        http = instance.http
        routes.append(Route("http", None, instance.name, url, str(http.address), http.port, 80))
    first = model.hostname(config, instance.name, instance.projects[0])
    ssh = instance.ssh
    url = f"ssh://git@{first}:{ssh.port}/"
    routes.append(Route("ssh", first, instance.name, url, str(ssh.address), ssh.port, 22))
    return routes


def route_table(config: GirofleConfig, instances: Iterable[Instance]) -> list[Route]:
    """Every route of the home: the dashboard's, then each live instance's, by name."""
    routes = []
    if config.routing == "traefik" and config.traefik.dashboard:
        host = model.dashboard_host(config)
        port = model.edge_port(config)
        url = model.edge_base_url(config, host) + "/dashboard/"
        routes.append(Route("dashboard", host, None, url, str(config.traefik.address), port, None))
    for instance in sorted(instances, key=lambda i: i.name):
        if instance.state != "decommissioned":
            routes += instance_routes(config, instance)
    return routes


def refuse_shared_hostnames(
    config: GirofleConfig, instances: Iterable[Instance], candidate: Instance
) -> None:
    """Refuse, before anything is applied, a hostname that would reach two instances."""
    if config.routing != "traefik":
        return
    others = [i for i in instances if i.name != candidate.name]
    owners: dict[str, set[str]] = defaultdict(set)
    for route in route_table(config, [*others, candidate]):
        if route.kind != "ssh" and route.hostname is not None:
            owners[route.hostname].add(route.instance or "the dashboard")
    for host, names in sorted(owners.items()):
        if len(names) > 1 and candidate.name in names:
            other = sorted(names - {candidate.name})[0]
            raise ConflictError(
                f"hostname {host} would reach both {candidate.name} and {other}: "
                "choose another instance or project name"
            )

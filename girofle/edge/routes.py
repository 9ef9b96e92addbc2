"""The route table: which hostname (or SSH pair) reaches which instance, on which port."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from girofle.config import GirofleConfig
from girofle.errors import ConflictError
from girofle.inventory import Instance
from girofle.quick.routes import Route, route_rows
from girofle.render import model


def route_table(config: GirofleConfig, instances: Iterable[Instance]) -> list[Route]:
    """Every route of the home: the dashboard's, then each live instance's, by name (the
    quick path's implementation, over the instances' JSON form)."""
    dumped = [instance.model_dump(mode="json") for instance in instances]
    return route_rows(model.quick_settings(config), dumped)


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

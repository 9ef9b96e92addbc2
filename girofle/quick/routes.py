"""`girofle routes`: the route table, from the inventory's JSON form and the settings
`model.quick_settings` derives from girofle.yml, with the standard library.

One implementation for the quick path (inventory.json and the view of girofle.yml) and the
full one (the validated inventory, dumped), as for `ls`'s rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from girofle.quick import view
from girofle.quick.ls import quick_home, read_inventory_json
from girofle.quick.output import emit_json, table

# The options the quick path knows; anything else (--help, a typo) is the full CLI's.
FLAGS = {"--json": "as_json", "--wide": "wide"}


class Route(NamedTuple):
    """One way in: a hostname through Traefik, an instance's own HTTP pair, or its SSH pair."""

    kind: str  # http, ssh, dashboard
    hostname: str | None
    instance: str | None
    url: str
    address: str  # where clients connect
    port: int  # the published port there
    target_port: int | None  # the port in the container (None: Traefik's own api@internal)

    def as_json(self) -> dict[str, Any]:
        return self._asdict()


def instance_routes(settings: dict[str, Any], instance: dict[str, Any]) -> list[Route]:
    """An instance's routes (its JSON form): its hostnames (or HTTP pair), then its SSH
    pair."""
    name: str = instance["name"]
    hosts = [_hostname(settings, name, project) for project in instance["projects"]]
    routes = []
    if settings["routing"] == "traefik":
        edge = (settings["edge_address"], int(settings["edge_port"]))
        template: str = settings["url_template"]
        for project, host in zip(instance["projects"], hosts, strict=True):
            url = template.format(instance=name, project=project)
            routes.append(Route("http", host, name, url, *edge, 80))
    elif instance.get("http") is not None:
        http = instance["http"]
        url = f"http://{http['address']}:{http['port']}/"
        routes.append(Route("http", None, name, url, str(http["address"]), int(http["port"]), 80))
    ssh = instance["ssh"]
    url = f"ssh://git@{hosts[0]}:{ssh['port']}/"
    routes.append(Route("ssh", hosts[0], name, url, str(ssh["address"]), int(ssh["port"]), 22))
    return routes


def route_rows(settings: dict[str, Any], instances: Iterable[dict[str, Any]]) -> list[Route]:
    """Every route of the home: the dashboard's, then each live instance's, by name."""
    routes = []
    dashboard = settings.get("dashboard")
    if dashboard:
        edge = (settings["edge_address"], int(settings["edge_port"]))
        routes.append(Route("dashboard", dashboard["host"], None, dashboard["url"], *edge, None))
    for instance in sorted(instances, key=lambda i: str(i["name"])):
        if instance["state"] != "decommissioned":
            routes += instance_routes(settings, instance)
    return routes


def print_routes(routes: list[Route], as_json: bool, wide: bool) -> None:
    """`girofle routes`'s output: JSON, or the table."""
    if as_json:
        emit_json([route.as_json() for route in routes])
        return
    table(
        ["kind", "hostname", "instance", "address", "port", "to", "url"],
        [
            [
                r.kind,
                r.hostname or "-",
                r.instance or "-",
                r.address,
                str(r.port),
                "api@internal" if r.target_port is None else str(r.target_port),
                r.url,
            ]
            for r in routes
        ],
        wide=wide,
    )


def quick_routes(args: list[str]) -> int | None:
    """Run `girofle routes ARGS` and return its exit code, or None when the full path must
    (other arguments, a home it would warn about or migrate, no fresh view of girofle.yml,
    an inventory of another format)."""
    if len(set(args)) != len(args) or not set(args) <= FLAGS.keys():
        return None
    home = quick_home()
    settings = None if home is None else view.recall(home)
    inventory = None if home is None or settings is None else read_inventory_json(home)
    if settings is None or inventory is None:
        return None
    instances = inventory.get("instances") or {}
    try:
        routes = route_rows(settings, [{**i, "name": n} for n, i in instances.items()])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # a record or a view this path does not read as the full one would
    print_routes(routes, "--json" in args, "--wide" in args)
    return 0


def _hostname(settings: dict[str, Any], instance: str, project: str) -> str:
    template: str = settings["hostname_template"]
    return template.format(instance=instance, project=project)

"""`girofle doctor`: is this host fit to run the fleet?"""

from __future__ import annotations

import errno
import shutil
import socket
from dataclasses import dataclass

from girofle.allocate import host_port_free
from girofle.errors import GirofleError
from girofle.inventory import read_inventory
from girofle.lifecycle.app import App
from girofle.render import model

MIN_FREE_GIB = 10


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def address_present(address: str) -> bool:
    """Whether an IPv4 address is configured on this host (it can be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError as err:
            return err.errno != errno.EADDRNOTAVAIL
    return True


def run_checks(app: App) -> list[Check]:
    checks: list[Check] = []
    try:
        checks.append(Check("engine", True, f"Docker {app.engine.ping()}"))
    except GirofleError as err:
        return [Check("engine", False, str(err))]
    try:
        checks.append(Check("compose", True, app.engine.compose_version()))
    except GirofleError as err:
        checks.append(Check("compose", False, str(err)))
    config = app.config
    root = config.data_root if config.data_root.exists() else app.home.root
    free = shutil.disk_usage(root).free / 2**30
    checks.append(Check("disk", free >= MIN_FREE_GIB, f"{free:.1f} GiB free under {root}"))
    for address in config.addresses:
        present = address_present(str(address))
        checks.append(
            Check(
                f"address {address}",
                present,
                "present on this host" if present else "not configured on this host",
            )
        )
    published = _published_ports(app)
    for instance in read_inventory(app.home).instances.values():
        if instance.state == "decommissioned":
            continue
        for endpoint in instance.endpoints():
            holder = published.get((str(endpoint.address), endpoint.port))
            if holder == instance.name:
                checks.append(Check(f"port {endpoint}", True, f"held by {instance.name}"))
            elif holder is not None:
                checks.append(
                    Check(f"port {endpoint}", False, f"held by {holder}, not {instance.name}")
                )
            else:
                free_now = host_port_free(endpoint.address, endpoint.port)
                checks.append(
                    Check(
                        f"port {endpoint}",
                        free_now,
                        "free (instance not running)"
                        if free_now
                        else f"used by another program, not {instance.name}",
                    )
                )
    checks.append(memory_check(app))
    if config.routing == "traefik":
        edge = app.engine.health(model.traefik_container(config.home_id))
        checks.append(
            Check(
                "edge",
                edge.status == "healthy",
                f"Traefik is {edge.status} (`girofle edge up` starts it)",
            )
        )
    checks += dns_checks(app)
    return checks


def memory_check(app: App) -> Check:
    """The fleet's memory budgets against the host's memory (GitLab sizes itself from the
    host otherwise, and instances on one host would starve each other)."""
    from girofle.memory import GIB, budget, meminfo

    fleet = [i for i in read_inventory(app.home).instances.values() if i.state != "decommissioned"]
    each = budget(app.config.gitlab)
    info = meminfo()
    total, available = info.get("MemTotal", 0), info.get("MemAvailable", 0)
    ok = each * len(fleet) <= total
    detail = (
        f"{len(fleet)} instance(s) x {each / GIB:.1f} GiB = {each * len(fleet) / GIB:.1f} GiB "
        f"of budgets; the host has {total / GIB:.1f} GiB ({available / GIB:.1f} GiB available)"
    )
    if not ok:
        detail += ": set gitlab.memory_profile: constrained, a smaller gitlab.memory_budget, "
        detail += "or move instances to another host"
    return Check("memory", ok, detail)


def dns_checks(app: App) -> list[Check]:
    """With a `dns:` section, each hostname resolves, on the zone's server, to its instance."""
    settings = app.config.dns
    if settings is None or app.config.routing != "traefik":
        return []
    from girofle.edge.dns import addresses_of

    checks = []
    for instance in read_inventory(app.home).instances.values():
        if instance.state == "decommissioned":
            continue
        for project in instance.projects:
            host = model.hostname(app.config, instance.name, project)
            try:
                found = addresses_of(settings, host)
            except GirofleError as err:
                checks.append(Check(f"dns {host}", False, str(err)))
                continue
            ok = found == {str(instance.address)}
            detail = ", ".join(sorted(found)) or "no A record"
            want = f"{instance.name} at {instance.address}"
            checks.append(Check(f"dns {host}", ok, f"{detail}" + ("" if ok else f" (want {want})")))
    return checks


def _published_ports(app: App) -> dict[tuple[str, int], str]:
    """(address, port) → instance name, for every port this home's containers publish."""
    result: dict[tuple[str, int], str] = {}
    for container in app.engine.containers({model.HOME_LABEL: app.config.home_id}):
        name = container.labels.get(model.INSTANCE_LABEL, "edge")
        for address, port in container.ports:
            result[(address, port)] = name
    return result

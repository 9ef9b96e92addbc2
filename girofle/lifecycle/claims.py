"""An instance's (address, port) pairs and subnet, chosen against the whole engine.

Several homes may share one engine: each sees only its own inventory, so what the engine
holds (every container's port bindings, stopped ones included, and every network's subnet)
counts too. Callers hold the host lock (girofle.home.host_lock) from the choice until the
engine shows it (compose create), so two homes never choose the same pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address, IPv4Network

from girofle import allocate
from girofle.inventory import Endpoint, Instance, Inventory
from girofle.lifecycle.app import App
from girofle.render import model


@dataclass(frozen=True)
class Taken:
    """What an instance may not have: other instances' and other containers' claims."""

    endpoints: set[Endpoint]
    subnets: list[IPv4Network]


def taken_for(app: App, inventory: Inventory, name: str) -> Taken:
    """Everything held on the engine and in the inventory, except by instance ``name``."""
    own_project = model.project_name(app.config.home_id, name)
    endpoints = inventory.endpoints_in_use(excluding=name)
    for binding in app.engine.port_bindings():
        if binding.project == own_project:
            continue
        try:
            endpoints.add(Endpoint(address=IPv4Address(binding.address), port=binding.port))
        except AddressValueError:
            continue  # an IPv6 binding: instances publish on IPv4 addresses
    subnets = [s for net, s in app.engine.networks() if net != own_project]
    return Taken(endpoints, [*inventory.subnets_in_use(excluding=name), *subnets])


def choose(
    app: App,
    taken: Taken,
    address: IPv4Address,
    ssh_port: int | None = None,
    http_port: int | None = None,
) -> tuple[Endpoint, Endpoint | None, IPv4Network]:
    """Free SSH and (in `ports` routing) HTTP pairs on ``address``, and a free subnet."""
    config = app.config
    ssh = allocate.allocate(address, config.ssh_ports, taken.endpoints, wanted=ssh_port)
    http = None
    if config.routing == "ports":
        http = allocate.allocate(
            address, config.http_ports, taken.endpoints | {ssh}, wanted=http_port
        )
    subnet = allocate.allocate_subnet(config.instance_networks, set(), taken.subnets)
    return ssh, http, subnet


def reallocated(app: App, instance: Instance, taken: Taken) -> Instance:
    """A resumed commission's instance, with new pairs or subnet where its recorded ones
    were taken meanwhile (by another home, or a container started behind Girofle's back)."""
    stale = [e for e in instance.endpoints() if allocate.clashes(e, taken.endpoints)]
    subnet_taken = any(instance.subnet.overlaps(s) for s in taken.subnets)
    if not stale and not subnet_taken:
        return instance
    kept = {e for e in instance.endpoints() if e not in stale}
    ssh, http, subnet = choose(app, Taken(taken.endpoints | kept, taken.subnets), instance.address)
    update: dict[str, object] = {}
    if instance.ssh in stale:
        update["ssh"] = ssh
    if instance.http is not None and instance.http in stale:
        update["http"] = http
    if subnet_taken:
        update["subnet"] = subnet
    moved = ", ".join(
        f"{getattr(instance, key)} -> {value}" for key, value in sorted(update.items())
    )
    app.progress(f"{instance.name}: what it was given is taken now; re-allocated {moved}")
    return instance.model_copy(update=update)

"""The nodes of a swarm home, with this home's instances on each."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from girofle.errors import UserError
from girofle.inventory import read_inventory
from girofle.lifecycle.app import App


@dataclass(frozen=True)
class NodeRow:
    """One row of `girofle nodes`."""

    hostname: str
    id: str
    role: str
    state: str
    availability: str
    address: str
    instances: list[str]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def node_rows(app: App) -> list[NodeRow]:
    """Every node of the swarm, with the instances of this home pinned to it."""
    if app.config.target != "swarm":
        raise UserError("nodes are a swarm's: this home's target is compose (one host)")
    from girofle.targets.swarm import SwarmTarget

    target = app.target
    assert isinstance(target, SwarmTarget)
    placed: dict[str, list[str]] = {}
    for instance in read_inventory(app.home).instances.values():
        if instance.node and instance.state != "decommissioned":
            placed.setdefault(instance.node, []).append(instance.name)
    return [
        NodeRow(
            n.hostname,
            n.id,
            n.role,
            n.state,
            n.availability,
            n.address,
            sorted(placed.get(n.id, [])),
        )
        for n in sorted(target.nodes(), key=lambda n: n.hostname)
    ]

"""The fleet as it is: the inventory reconciled with what the engine reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from girofle.errors import GirofleError
from girofle.inventory import Instance, read_inventory
from girofle.lifecycle.app import App
from girofle.quick.rows import InstanceStatus, fleet_rows
from girofle.render import model


def recorded_instance(label: str) -> Instance:
    """An instance as its service's record label has it (running: the service exists)."""
    return Instance.model_validate({**json.loads(label), "state": "running"})


def fleet_status(app: App) -> list[InstanceStatus]:
    """Every instance with its observed state, from one engine query for the whole fleet."""
    inventory = read_inventory(app.home)
    by_name = app.target.observe()
    # On a swarm, the services say which instances there are, whatever this host's
    # inventory knows (a second manager, or one whose inventory.json is gone).
    for name, row in by_name.items():
        if name not in inventory.instances and model.RECORD_LABEL in row.labels:
            inventory.instances[name] = recorded_instance(row.labels[model.RECORD_LABEL])
    return fleet_rows(inventory.model_dump(mode="json"), by_name, model.quick_settings(app.config))


@dataclass(frozen=True)
class Outcome:
    name: str
    ok: bool
    detail: str


def over_fleet(app: App, names: list[str], operation: Callable[[str], object]) -> list[Outcome]:
    """Run ``operation`` on each instance with bounded parallelism; collect every outcome
    (its detail: what the operation returned when that is text, else "ok")."""

    def one(name: str) -> Outcome:
        try:
            result = operation(name)
        except GirofleError as err:
            return Outcome(name, False, str(err))
        return Outcome(name, True, result if isinstance(result, str) else "ok")

    with ThreadPoolExecutor(max_workers=app.config.parallelism) as pool:
        return list(pool.map(one, names))


def live_names(app: App) -> list[str]:
    inventory = read_inventory(app.home)
    return sorted(n for n, i in inventory.instances.items() if i.state != "decommissioned")

"""The inventory rows of instances, as operations read and change them."""

from __future__ import annotations

import os

from girofle.errors import ConflictError, UserError
from girofle.inventory import Instance, editing, read_inventory
from girofle.lifecycle import validate
from girofle.lifecycle.app import App


def record(app: App, name: str, **changes: object) -> Instance:
    """Change an instance's row in the inventory; the row as it is now."""
    with editing(app.home) as inventory:
        current = inventory.get(name)
        updated = current.model_copy(update=changes)
        inventory.instances[name] = Instance.model_validate(updated.model_dump())
        return inventory.instances[name]


def live(app: App, name: str) -> Instance:
    """An instance that is not decommissioned, nor being upgraded by another process (an
    upgrade holds the instance's lock only while a hop applies, and must not find it
    stopped or reconfigured between two steps)."""
    inventory = read_inventory(app.home)
    instance = inventory.get(validate.instance_name(name))
    if instance.state == "decommissioned":
        raise UserError(
            f"instance {name!r} is decommissioned; `girofle rm {name} --purge` removes it"
        )
    upgrade = inventory.upgrades.get(name)
    if upgrade is not None and upgrade.pid != os.getpid() and upgrade.state() == "upgrading":
        raise ConflictError(
            f"{name} is being upgraded to GitLab {upgrade.target} (process {upgrade.pid}): "
            "wait until it ends"
        )
    return instance

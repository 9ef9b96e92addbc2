"""Decommissioning an instance (rm), and purging what Girofle laid out for it."""

from __future__ import annotations

import shutil

from girofle.errors import SsoError
from girofle.inventory import editing, read_inventory
from girofle.lifecycle import validate
from girofle.lifecycle.app import App
from girofle.lifecycle.converge import dns_follows, edge_follows
from girofle.lifecycle.plan import Plan
from girofle.lifecycle.records import record
from girofle.render.model import InstancePaths
from girofle.sso import registration


def plan_rm(app: App, name: str, purge: bool) -> Plan:
    """What rm would do, changing nothing."""
    instance = read_inventory(app.home).get(validate.instance_name(name))
    plan = Plan()
    if instance.state != "decommissioned":
        if instance.state == "running":
            plan.actions.append(f"take a final backup of {name}")
        plan.actions.append(f"stop and remove the containers and network of {name}")
    if registration.registered(app.home, name) is not None:
        plan.actions.append(f"delete {name}'s client at the identity provider")
    if purge:
        paths = InstancePaths.of(app.config.data_root, name)
        plan.actions.append(f"delete {paths.root}, {app.home.stack_dir(name)} and its secrets")
    return plan


def rm(app: App, name: str, purge: bool, final_backup: bool = True) -> Plan:
    """Decommission: a final backup, then containers and network removed; data kept unless
    ``purge`` (which also deletes the local backups, the final one included)."""
    plan = plan_rm(app, name, purge)
    if plan.nothing_to_do:
        return plan
    app.engine.ping()
    instance = read_inventory(app.home).get(name)
    if final_backup and instance.state == "running":
        from girofle.backup.instance import backup_instance  # backup builds on lifecycle

        app.progress(f"{name}: taking a final backup")
        backup_instance(app, name)
    with app.home.lock(f"instance-{name}", wait=False):
        # Its client at the identity provider goes first: a provider that does not answer
        # stops the rm here, with nothing removed, and a rerun tries again.
        try:
            registration.deregister(app.config, app.home, name, app.progress)
        except SsoError as err:
            raise SsoError(
                f"{err}; nothing of {name} was removed: rerun `girofle rm` when it answers"
            ) from None
        if instance.state != "decommissioned":
            app.target.remove(name)
            record(app, name, state="decommissioned")
            gone = instance.model_copy(update={"state": "decommissioned"})
            edge_follows(app, gone)
            dns_follows(app, gone)
        if purge:
            _purge(app, name)
    return plan


def _purge(app: App, name: str) -> None:
    paths = InstancePaths.of(app.config.data_root, name)
    # On a swarm, its data is on its node's disk: deleted there first (a node that is down
    # keeps it, and the purge stops before anything else is deleted).
    app.target.purge_node_data(name)
    for directory in (paths.root, app.home.stack_dir(name), app.home.instance_secrets(name)):
        # Only ever delete what Girofle laid out for this very instance.
        if directory.name in (paths.root.name, name) and directory.exists():
            shutil.rmtree(directory)
    with editing(app.home) as inventory:
        inventory.instances.pop(name, None)

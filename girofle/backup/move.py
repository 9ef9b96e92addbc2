"""Moving an instance to another swarm node: its backup carried through the remote.

A move is journalled in the inventory before it changes anything, and goes in four steps,
each of which a rerun finds done or does again:

1. carry: a backup with puma and sidekiq stopped (nothing is written after it), pushed to
   the remote; or, from a node that is down, the remote's backup (``--from-backup``);
2. switch: the old service goes (its data stays on its node), and the instance is recorded
   on the new node, its SSH port on that node's address;
3. arrive: a first boot there, then a restore of the carried backup;
4. leave: once the new copy is healthy, restored and routed, the old copy's directory is
   deleted on its node (kept, and said so, while that node is down).
"""

from __future__ import annotations

from ipaddress import IPv4Address

from girofle.backup.instance import backup_instance
from girofle.backup.restore import restore_instance
from girofle.errors import ConflictError, GirofleError, UserError
from girofle.inventory import Instance, MoveRecord, editing, now, read_inventory
from girofle.lifecycle import claims, commission, validate
from girofle.lifecycle.app import App
from girofle.lifecycle.converge import converge, dns_follows
from girofle.render.model import InstancePaths
from girofle.targets.swarm import SwarmTarget


def move(
    app: App, name: str, to: str | None, from_backup: bool, backup_id: str = "latest"
) -> Instance:
    """Move instance ``name`` to node ``to`` (or the node Girofle picks); resume a move
    under way. ``from_backup``: its node is down, bring it up from the remote's backup."""
    validate.instance_name(name)
    target = app.target
    if not isinstance(target, SwarmTarget):
        raise UserError("move takes an instance to another swarm node: it needs target: swarm")
    if app.config.remote is None:
        raise UserError(
            "a move carries the instance through the remote: add a `remote:` section "
            "(repository) to girofle.yml"
        )
    app.engine.ping()
    with app.home.lock(f"move-{name}", wait=False):
        record = read_inventory(app.home).moves.get(name)
        if record is None:
            record = _begin(app, target, name, to, from_backup)
        else:
            app.progress(f"{name}: resuming its move to node {target.hostname(record.node)}")
        if record.backup_id is None:
            record = _carry(app, record, from_backup, backup_id)
        _switch(app, target, record)
        instance = _arrive(app, record)
        _leave(app, target, record)
        with editing(app.home) as inventory:
            inventory.moves.pop(name, None)
        return instance


def _begin(
    app: App, target: SwarmTarget, name: str, to: str | None, from_backup: bool
) -> MoveRecord:
    """Check the move before anything changes, and record it."""
    inventory = read_inventory(app.home)
    instance = inventory.get(name)
    if instance.node is None:
        raise UserError(f"{name} has no node: it was not placed on the swarm")
    if instance.state == "decommissioned" or (instance.state != "running" and not from_backup):
        raise UserError(f"{name} is {instance.state}: only an instance that runs moves")
    if not from_backup and not target.node_ready(instance.node):
        raise ConflictError(
            f"{name}'s node {target.hostname(instance.node)} is down: "
            f"`girofle move {name} --from-backup` brings it up elsewhere from the remote"
        )
    if to is None and not from_backup:
        raise UserError("say where it goes: --to NODE")
    others = [i.node for n, i in inventory.instances.items() if n != name]
    placement = target.place(to, others)
    assert placement is not None
    node = placement[0]
    if node == instance.node:
        raise UserError(f"{name} is on node {target.hostname(node)} already")
    if target.holds_data(node, name):
        root = InstancePaths.of(app.config.data_root, name).root
        raise ConflictError(
            f"node {target.hostname(node)} holds {root} already (an older copy of {name}): "
            "delete it there first"
        )
    record = MoveRecord(source=instance, node=node, started_at=now())
    with editing(app.home) as inventory:
        inventory.moves[name] = record
    return record


def _carry(app: App, record: MoveRecord, from_backup: bool, backup_id: str) -> MoveRecord:
    """The backup the move carries: taken now (GitLab's writers stopped) and pushed, or
    the remote's, for an instance whose node is down."""
    name = record.source.name
    if from_backup:
        from girofle.backup.remote import pick, restic_for

        restic = restic_for(app.config.remote, app.home.root, app.config.tools)
        snapshots = restic.snapshots({"kind": "instance", "instance": name})
        chosen = pick(snapshots, backup_id, name).tags["backup"]
        app.progress(f"{name}: bringing it up from the remote's backup {chosen}")
    else:
        app.progress(f"{name}: a last backup, with puma and sidekiq stopped, to the remote")
        chosen = backup_instance(app, name, remote=True, quiesced=True).backup_id
    carried = record.model_copy(update={"backup_id": chosen})
    with editing(app.home) as inventory:
        inventory.moves[name] = carried
    return carried


def _switch(app: App, target: SwarmTarget, record: MoveRecord) -> None:
    """The old service goes; the instance is recorded on the new node, its SSH port on
    that node's address (the same port when it is free there)."""
    name = record.source.name
    if read_inventory(app.home).get(name).node == record.node:
        return  # switched already
    leaving = target.hostname(record.source.node or "")
    app.progress(f"{name}: removing its service from node {leaving}")
    target.remove(name)
    address = next(n.address for n in target.nodes() if n.id == record.node)
    with editing(app.home) as inventory:
        instance = inventory.get(name)
        taken = claims.taken_for(app, inventory, name)
        try:
            ssh, http, _ = claims.choose(
                app, taken, IPv4Address(address), instance.ssh.port,
                instance.http.port if instance.http else None,
            )  # fmt: skip
        except GirofleError:  # taken on that node: any free one
            ssh, http, _ = claims.choose(app, taken, IPv4Address(address))
        inventory.instances[name] = instance.model_copy(
            update={
                "node": record.node,
                "address": IPv4Address(address),
                "ssh": ssh,
                "http": http,
                "state": "creating",
            }
        )


def _arrive(app: App, record: MoveRecord) -> Instance:
    """A first boot on the new node, then the carried backup restored into it."""
    name = record.source.name
    instance = read_inventory(app.home).get(name)
    if instance.state != "running":
        commission.lay_out(app, instance)
        app.target.create(name)
        instance = converge(app, instance, reconfigure_after=True)
        dns_follows(app, instance)
    assert record.backup_id is not None
    restore_instance(app, name, record.backup_id, force=True, from_remote=True)
    return read_inventory(app.home).get(name)


def _leave(app: App, target: SwarmTarget, record: MoveRecord) -> None:
    """Delete the old copy on the node it left, once the new one serves."""
    name, node = record.source.name, record.source.node
    assert node is not None
    if target.node_ready(node):
        app.progress(f"{name}: deleting the old copy on node {target.hostname(node)}")
        target.purge_on(node, name)
        return
    root = InstancePaths.of(app.config.data_root, name).root
    app.progress(
        f"{name}: node {target.hostname(node)} is down: the old copy stays in {root} "
        "there; delete it once the node is back (a move there is refused until then)"
    )

"""girofle move."""

from __future__ import annotations

import click

from girofle.cli.common import json_option
from girofle.cli.output import emit_json
from girofle.lifecycle.app import App


@click.command("move")
@click.argument("name")
@click.option("--to", "to", metavar="NODE", help="The swarm node it goes to (hostname or ID).")
@click.option(
    "--from-backup",
    is_flag=True,
    help="Its node is down: bring it up on another node from the remote's backup.",
)
@click.option(
    "--backup",
    "backup_id",
    default="latest",
    show_default=True,
    help="With --from-backup: which of the remote's backups.",
)
@json_option
@click.pass_obj
def move(
    app: App, name: str, to: str | None, from_backup: bool, backup_id: str, as_json: bool
) -> None:
    """Move instance NAME to another swarm node (target: swarm), through the remote.

    A last backup is taken with puma and sidekiq stopped (nothing is written after it) and
    pushed; the old service goes, NAME boots on NODE and the backup is restored there; the
    old copy's directory is deleted only once the new one is healthy, restored and routed.
    A move that stopped (a kill, a failure) resumes when run again.
    """
    from girofle.backup.move import move as move_instance
    from girofle.targets.swarm import SwarmTarget

    if backup_id != "latest" and not from_backup:
        raise click.UsageError("--backup applies to --from-backup (a move takes its own)")
    instance = move_instance(app, name, to, from_backup, backup_id)
    assert isinstance(app.target, SwarmTarget) and instance.node is not None
    hostname = app.target.hostname(instance.node)
    if as_json:
        emit_json({"instance": name, "node": hostname, "ssh": str(instance.ssh)})
        return
    click.echo(f"{name}: on node {hostname}, SSH at {instance.ssh}")

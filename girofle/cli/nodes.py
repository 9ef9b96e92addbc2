"""girofle nodes."""

from __future__ import annotations

import click

from girofle.cli.common import json_option
from girofle.cli.output import emit_json, table
from girofle.lifecycle.app import App
from girofle.lifecycle.nodes import node_rows


@click.command("nodes")
@json_option
@click.pass_obj
def nodes(app: App, as_json: bool) -> None:
    """List the swarm's nodes (target: swarm): role, state, availability, address, and this
    home's instances on each."""
    rows = node_rows(app)
    if as_json:
        emit_json([row.as_json() for row in rows])
        return
    table(
        ["hostname", "role", "state", "availability", "address", "instances"],
        [
            [r.hostname, r.role, r.state, r.availability, r.address, " ".join(r.instances) or "-"]
            for r in rows
        ],
    )

"""girofle ls (the full path: the quick one, girofle.quick.ls, prints the same rows)."""

from __future__ import annotations

import click

from girofle.cli.common import json_option, wide_option
from girofle.lifecycle.app import App
from girofle.lifecycle.fleet import fleet_status
from girofle.quick.rows import print_ls


@click.command("ls")
@click.option(
    "--all", "show_all", is_flag=True, help="Also list decommissioned instances (kept data)."
)
@json_option
@wide_option
@click.pass_obj
def ls(app: App, show_all: bool, as_json: bool, wide: bool) -> None:
    """List the instances with their state, URLs, (address, port) pairs, image and version
    (decommissioned ones only with --all)."""
    rows = [r for r in fleet_status(app) if show_all or r.state != "decommissioned"]
    # On a swarm, which node runs each instance.
    print_ls(rows, as_json, wide, nodes=app.config.target == "swarm")
    app.remember_quick_view()  # the next `ls` may take the quick path

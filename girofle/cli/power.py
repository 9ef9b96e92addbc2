"""girofle start, stop, restart."""

from __future__ import annotations

from collections.abc import Callable

import click

from girofle.cli.output import table
from girofle.errors import GirofleError
from girofle.inventory import Instance
from girofle.lifecycle import power
from girofle.lifecycle.app import App
from girofle.lifecycle.fleet import live_names, over_fleet
from girofle.lifecycle.init import start_edge, stop_edge


def _command(name: str, operation: Callable[[App, str], Instance], summary: str) -> click.Command:
    @click.command(name, help=summary)
    @click.argument("instance", required=False)
    @click.option("--all", "everything", is_flag=True, help="Every instance of the fleet.")
    @click.pass_obj
    def command(app: App, instance: str | None, everything: bool) -> None:
        if everything == (instance is not None):
            raise click.UsageError("give one INSTANCE or --all")
        if instance is not None:
            done = operation(app, instance)
            click.echo(f"{done.name}: {done.state}", err=True)
            return
        app.engine.ping()
        if name == "start" and app.config.routing == "traefik":
            start_edge(app)
        outcomes = over_fleet(app, live_names(app), lambda n: operation(app, n))
        if name == "stop" and app.config.routing == "traefik":
            stop_edge(app)
        table(["instance", "result"], [[o.name, o.detail] for o in outcomes])
        if not all(o.ok for o in outcomes):
            raise GirofleError(f"{name} failed for {sum(not o.ok for o in outcomes)} instance(s)")

    return command


start = _command("start", power.start, "Start an instance (or --all) and wait until healthy.")
stop = _command("stop", power.stop, "Stop an instance (or --all); data and ports are kept.")
restart = _command("restart", power.restart, "Restart an instance (or --all), wait healthy.")

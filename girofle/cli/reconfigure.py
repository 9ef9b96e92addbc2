"""girofle reconfigure."""

from __future__ import annotations

import time

import click

from girofle.cli.common import dry_run_option, print_plan, set_option
from girofle.cli.output import table
from girofle.errors import GirofleError
from girofle.lifecycle import reconfigure as reconfiguring
from girofle.lifecycle.app import App
from girofle.lifecycle.fleet import live_names, over_fleet
from girofle.lifecycle.validate import SettingPairs


@click.command()
@click.argument("name", required=False)
@click.option("--all", "everything", is_flag=True, help="Every instance, with bounded parallelism.")
@set_option
@dry_run_option
@click.pass_obj
def reconfigure(
    app: App, name: str | None, everything: bool, settings: SettingPairs, dry_run: bool
) -> None:
    """Re-render, apply, wait healthy and run gitlab-ctl reconfigure (NAME or --all)."""
    if everything == (name is not None):
        raise click.UsageError("give one NAME or --all")
    names = [name] if name is not None else live_names(app)
    if dry_run:
        for each in names:
            click.echo(f"# {each}")
            print_plan(reconfiguring.plan_reconfigure(app, each, settings))
        return
    if name is not None:
        reconfiguring.reconfigure(app, name, settings)
        click.echo(f"{name}: reconfigured", err=True)
        return
    started: dict[str, float] = {}

    def one(instance: str) -> None:
        started[instance] = time.monotonic()
        reconfiguring.reconfigure(app, instance, settings)
        started[instance] = time.monotonic() - started[instance]

    outcomes = over_fleet(app, names, one)
    table(
        ["instance", "result", "seconds"],
        [[o.name, o.detail, f"{started.get(o.name, 0):.0f}"] for o in outcomes],
    )
    if not all(o.ok for o in outcomes):
        raise GirofleError(f"reconfigure failed for {sum(not o.ok for o in outcomes)} instance(s)")

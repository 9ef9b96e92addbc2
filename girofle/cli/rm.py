"""girofle rm."""

from __future__ import annotations

import click

from girofle.cli.common import dry_run_option, print_plan
from girofle.lifecycle import remove
from girofle.lifecycle.app import App


@click.command()
@click.argument("name")
@click.option("--purge", is_flag=True, help="Also delete the instance's data, stack and secrets.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --purge deletes data.")
@click.option("--no-backup", is_flag=True, help="Skip the final backup taken before removal.")
@dry_run_option
@click.pass_obj
def rm(app: App, name: str, purge: bool, yes: bool, no_backup: bool, dry_run: bool) -> None:
    """Decommission instance NAME: stop it and remove its containers; keep its data."""
    plan = remove.plan_rm(app, name, purge)
    if dry_run or plan.nothing_to_do:
        print_plan(plan)
        return
    if purge and not yes:
        click.confirm(f"Delete all data of {name}? This cannot be undone", abort=True, err=True)
    remove.rm(app, name, purge, final_backup=not no_backup)
    click.echo(f"{name}: {'purged' if purge else 'decommissioned (data kept)'}", err=True)

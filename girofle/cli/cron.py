"""girofle cron install|remove."""

from __future__ import annotations

from typing import Literal

import click

from girofle.config import dump_config
from girofle.home import atomic_write
from girofle.inventory import read_inventory
from girofle.lifecycle.app import App


@click.group()
def cron() -> None:
    """Run scheduled backups from the host's crontab instead of backup sidecars."""


def _switch_scheduler(app: App, scheduler: Literal["sidecar", "cron", "none"]) -> App:
    """Set backups.scheduler in girofle.yml; re-render (and apply) every instance's stack."""
    from girofle.lifecycle.power import refresh_stack

    config = app.config
    if config.backups.scheduler == scheduler:
        return app
    with app.home.lock("config"):
        backups = config.backups.model_copy(update={"scheduler": scheduler})
        atomic_write(
            app.home.config_file, dump_config(config.model_copy(update={"backups": backups}))
        )
    fresh = App(app.home, progress=app.progress)
    for instance in read_inventory(fresh.home).instances.values():
        if instance.state != "decommissioned":
            fresh.progress(
                f"{instance.name}: re-rendering its stack (backups.scheduler: {scheduler})"
            )
            refresh_stack(fresh, instance.name)
    return fresh


@cron.command("install")
@click.pass_obj
def install_command(app: App) -> None:
    """Write one crontab job per instance (on its schedule) and drop the backup sidecars.

    Sets backups.scheduler: cron in girofle.yml. Other crontab lines are kept. Run it again
    after new-stack or a schedule change.
    """
    from girofle.backup import cron as crontab

    app = _switch_scheduler(app, "cron")
    for line in crontab.install(app):
        click.echo(line)


@cron.command("remove")
@click.pass_obj
def remove_command(app: App) -> None:
    """Remove this home's jobs from the crontab (other lines are kept).

    When cron ran the schedule, scheduled backups are then off (backups.scheduler: none);
    set it to sidecar and run `girofle cron remove` again or `girofle reconfigure` to
    bring the sidecars back.
    """
    from girofle.backup import cron as crontab

    removed = crontab.remove(app)
    if app.config.backups.scheduler == "cron":
        _switch_scheduler(app, "none")
        click.echo("scheduled backups are off now (backups.scheduler: none)", err=True)
    click.echo(f"removed {removed} job(s)")

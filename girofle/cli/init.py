"""girofle init."""

from __future__ import annotations

import sys
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import click

from girofle.cli.common import F, dry_run_option, print_plan
from girofle.cli.new_stack import print_instance
from girofle.config import GirofleConfig
from girofle.errors import UserError
from girofle.inventory import read_inventory
from girofle.lifecycle.app import App
from girofle.lifecycle.commission import NewStackRequest, new_stack
from girofle.lifecycle.init import build_config, init_home, plan_init, start_edge


def print_dashboard_credentials(app: App, password: str) -> None:
    """The dashboard's URL and its generated credentials: shown this once, kept 0600."""
    from girofle.edge.material import DASHBOARD_USER, dashboard_password_file
    from girofle.render import model

    url = model.edge_base_url(app.config, model.dashboard_host(app.config)) + "/dashboard/"
    click.echo(
        f"Traefik dashboard: {url} user {DASHBOARD_USER} password {password}\n"
        f"  (shown once; kept in {dashboard_password_file(app.home)}, mode 0600)",
        err=True,
    )


# The settings init writes into a new girofle.yml; `up` takes the same, for a new home.
HOME_OPTIONS = (
    click.option(
        "--routing",
        type=click.Choice(["traefik", "ports"]),
        envvar="GIROFLE_ROUTING",
        help="traefik: hostnames through Traefik; ports: each instance on its own port.",
    ),
    click.option(
        "--address",
        "addresses",
        multiple=True,
        type=IPv4Address,
        envvar="GIROFLE_ADDRESS",
        help="An IP address Girofle may publish instances on (repeatable; first is default).",
    ),
    click.option(
        "--domain", envvar="GIROFLE_DOMAIN", help="Domain of instance hostnames [kytes.io]."
    ),
    click.option(
        "--data-root", envvar="GIROFLE_DATA_ROOT", help="Where instance data lives [HOME/data]."
    ),
    click.option("--home-id", envvar="GIROFLE_HOME_ID", help="The home's id [generated]."),
    click.option(
        "--gitlab-image", envvar="GIROFLE_GITLAB_IMAGE", help="GitLab image (pinned tag)."
    ),
    click.option(
        "--traefik-image", envvar="GIROFLE_TRAEFIK_IMAGE", help="Traefik image (pinned tag)."
    ),
    click.option(
        "--traefik-port",
        type=click.IntRange(1, 65535),
        envvar="GIROFLE_TRAEFIK_PORT",
        help="Host port Traefik's web (HTTP) entrypoint listens on [80].",
    ),
    click.option(
        "--https-port",
        type=click.IntRange(1, 65535),
        envvar="GIROFLE_HTTPS_PORT",
        help="Host port Traefik's websecure (HTTPS) entrypoint listens on [443].",
    ),
    click.option(
        "--tools-base-image",
        envvar="GIROFLE_TOOLS_BASE_IMAGE",
        help="The Debian image the tools image is built on [python:3.11-slim].",
    ),
    click.option(
        "-c",
        "--config",
        "pairs",
        multiple=True,
        metavar="KEY=VALUE",
        help="Set any girofle.yml key, e.g. gitlab.health_timeout=600 (repeatable).",
    ),
    click.option(
        "--first-instance",
        default="gitlab",
        show_default=True,
        help="Name of the GitLab instance init commissions.",
    ),
)


def home_options(command: F) -> F:
    """The options that make a new home's girofle.yml."""
    for option in reversed(HOME_OPTIONS):
        command = option(command)
    return command


def new_config(app: App, settings: dict[str, Any]) -> GirofleConfig:
    """girofle.yml for a new home from the options: defaults, then flags, then -c pairs."""
    addresses = settings["addresses"]
    return build_config(
        app.home,
        {
            "routing": settings["routing"],
            "domain": settings["domain"],
            "data_root": settings["data_root"],
            "home_id": settings["home_id"],
            "addresses": [str(a) for a in addresses] or None,
            "gitlab.image": settings["gitlab_image"],
            "traefik.image": settings["traefik_image"],
            "traefik.http_port": settings["traefik_port"],
            "traefik.https_port": settings["https_port"],
            "tools.base_image": settings["tools_base_image"],
        },
        settings["pairs"],
    )


@click.command()
@home_options
@click.option("--no-first-instance", is_flag=True, help="Do not commission a first instance.")
@click.option("--yes", "-y", is_flag=True, help="Never ask; use defaults for what is missing.")
@dry_run_option
@click.pass_obj
def init(app: App, /, no_first_instance: bool, yes: bool, dry_run: bool, **settings: Any) -> None:
    """Provision Girofle on this host: girofle.yml, the layout, the edge, a first instance."""
    if app.home.config_file.exists():
        raise UserError(f"{app.home.config_file} exists already: this home is initialised")
    if not settings["addresses"] and not yes and sys.stdin.isatty():
        settings["addresses"] = (
            click.prompt(
                "IP address for the first instance",
                type=IPv4Address,
                default=IPv4Address("127.0.0.1"),
            ),
        )
    config = new_config(app, settings)
    first = settings["first_instance"]
    request = None if no_first_instance else NewStackRequest(name=first)
    if dry_run:
        plan = plan_init(app, config)
        if request is not None:
            plan.actions.append(f"commission a first instance, {request.name}")
        print_plan(plan)
        return
    password = init_home(app, config)
    click.echo(f"initialised {app.home.root} (home {config.home_id})", err=True)
    if password is not None:
        print_dashboard_credentials(app, password)
    if request is not None:
        print_instance(app, new_stack(app, request), as_json=False)


@click.command("up")
@home_options
@click.pass_obj
def up(app: App, /, **settings: Any) -> None:
    """Bring this home's fleet up, from nothing or from where a failed run stopped: init
    (with the options, for a new home), the edge, a first instance when there is none,
    every instance started. Nothing changes when the fleet is up; rerun it freely."""
    from girofle.lifecycle.up import bring_up

    report = bring_up(app, lambda: new_config(app, settings), settings["first_instance"])
    if report.dashboard_password is not None:
        print_dashboard_credentials(app, report.dashboard_password)
    inventory = read_inventory(app.home)
    for name in report.instances:
        print_instance(app, inventory.get(name), as_json=False)
    if not report.changed:
        click.echo(f"the fleet is up: {len(report.instances)} instance(s), nothing to do", err=True)
    girofle = Path(sys.argv[0]).resolve()
    click.echo(
        f"further commands against this home: GIROFLE_HOME={app.home.root} {girofle} ls",
        err=True,
    )


@click.group("edge")
def edge() -> None:
    """The home's edge (Traefik): bring it up, or remove it."""


@edge.command("up")
@click.pass_obj
def edge_up(app: App) -> None:
    """(Re)start the edge (Traefik) of this home."""
    password = start_edge(app)
    if password is not None:
        print_dashboard_credentials(app, password)


@edge.command("down")
@click.pass_obj
def edge_down_command(app: App) -> None:
    """Remove this home's edge (Traefik and its proxy network); `edge up` restores it."""
    from girofle.lifecycle.init import edge_down

    edge_down(app)
    click.echo("edge removed; `girofle edge up` brings it back", err=True)


# The names before `edge up|down`, kept for scripts that use them.
edge_up_alias = click.Command(
    "edge-up", callback=edge_up.callback, hidden=True, help="Same as `girofle edge up`."
)
edge_down_alias = click.Command(
    "edge-down", callback=edge_down_command.callback, hidden=True, help="Same as `edge down`."
)


@click.command("uninstall")
@click.option(
    "--purge",
    is_flag=True,
    help="Also delete the home's files and every instance's data (Girofle's own backups "
    "in sauvegardes/ stay).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-backup", is_flag=True, help="Skip each running instance's final backup.")
@dry_run_option
@click.pass_obj
def uninstall_command(app: App, purge: bool, yes: bool, no_backup: bool, dry_run: bool) -> None:
    """Remove this whole home: every instance (a final backup first), the edge and the
    crontab jobs. Data and files stay unless --purge."""
    from girofle.lifecycle.uninstall import plan_uninstall, uninstall

    plan = plan_uninstall(app, purge, final_backup=not no_backup)
    if dry_run:
        print_plan(plan)
        return
    if not yes:
        what = "and DELETE its files and every instance's data" if purge else "(data kept)"
        click.confirm(f"Remove the home {app.home.root} {what}?", abort=True, err=True)
    uninstall(app, purge, final_backup=not no_backup)
    kept = "" if purge else f"; its files stay in {app.home.root}"
    click.echo(f"uninstalled{kept}", err=True)

"""girofle new-stack."""

from __future__ import annotations

from ipaddress import IPv4Address

import click

from girofle.cli.common import dry_run_option, json_option, print_plan, set_option
from girofle.cli.output import emit_json
from girofle.inventory import Instance
from girofle.lifecycle.app import App
from girofle.lifecycle.commission import NewStackRequest, new_stack, plan_new_stack
from girofle.lifecycle.validate import SettingPairs
from girofle.render.model import instance_urls


def answers(app: App, url: str) -> bool:
    """Whether an instance URL answers through Traefik (new-stack already waited for it)."""
    if app.config.routing != "traefik":
        return True
    from girofle.lifecycle.routes import routed

    return routed(app.config, app.home, url.split("//", 1)[1].split("/")[0].split(":")[0])


def print_instance(app: App, instance: Instance, as_json: bool) -> None:
    """An instance's URLs (one per line), or its whole record as JSON."""
    urls = instance_urls(app.config, instance)
    if as_json:
        emit_json({**instance.model_dump(mode="json"), "urls": urls})
        return
    for url in urls:
        if answers(app, url):
            click.echo(url)
        else:
            click.echo(f"{url} does not answer through Traefik yet", err=True)
    click.echo(f"ssh://git@{instance.ssh.address}:{instance.ssh.port}/", err=True)


@click.command("new-stack")
@click.argument("name")
@click.option(
    "--project",
    "projects",
    multiple=True,
    help="A project hostname <project>.scm.<name>.<domain> (repeatable).",
)
@click.option("--address", type=IPv4Address, help="Address to publish on (one of girofle.yml's).")
@click.option("--image", envvar="GIROFLE_GITLAB_IMAGE", help="GitLab image for this instance.")
@click.option("--ssh-port", type=click.IntRange(1, 65535), help="Exact SSH port to use.")
@click.option("--http-port", type=click.IntRange(1, 65535), help="Exact HTTP port (ports routing).")
@click.option(
    "--force",
    is_flag=True,
    help="Commission even when the host's available memory is below the instance's budget.",
)
@click.option(
    "--node",
    metavar="NODE",
    help="target: swarm: the node (hostname or ID) it runs on; by default the ready node "
    "with the fewest instances.",
)
@set_option
@json_option
@dry_run_option
@click.pass_obj
def new_stack_command(
    app: App,
    name: str,
    projects: tuple[str, ...],
    address: IPv4Address | None,
    image: str | None,
    ssh_port: int | None,
    http_port: int | None,
    force: bool,
    node: str | None,
    settings: SettingPairs,
    as_json: bool,
    dry_run: bool,
) -> None:
    """Commission GitLab instance NAME: render, apply, wait healthy, reconfigure, record.

    It is refused when the host's MemAvailable is below the instance's memory budget
    (girofle.yml gitlab.memory_budget), unless --force; at most gitlab.concurrent_first_boots
    instances boot for the first time at once, the others waiting their turn.
    """
    request = NewStackRequest(
        name, projects, address, image, settings, ssh_port, http_port, force=force, node=node
    )
    if dry_run:
        print_plan(plan_new_stack(app, request))
        return
    print_instance(app, new_stack(app, request), as_json)

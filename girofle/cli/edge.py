"""girofle routes, girofle project add|rm, girofle ca export."""

from __future__ import annotations

import click

from girofle.cli.common import json_option, wide_option
from girofle.errors import UserError
from girofle.lifecycle.app import App


@click.command("routes")
@json_option
@wide_option
@click.pass_obj
def routes(app: App, as_json: bool, wide: bool) -> None:
    """List every way in: hostname -> instance -> port, and each instance's SSH pair."""
    from girofle.edge.routes import route_table
    from girofle.inventory import read_inventory
    from girofle.quick.routes import print_routes

    print_routes(
        route_table(app.config, read_inventory(app.home).instances.values()), as_json, wide
    )
    app.remember_quick_view()  # the next `routes` or `ls` may take the quick path


@click.group("project")
def project() -> None:
    """Add or remove a project hostname (<project>.scm.<instance>.<domain>) on an instance."""


@project.command("add")
@click.argument("instance")
@click.argument("name")
@click.pass_obj
def project_add(app: App, instance: str, name: str) -> None:
    """Give INSTANCE the hostname of project NAME (router, certificate, DNS record)."""
    from girofle.cli.new_stack import print_instance
    from girofle.lifecycle.projects import set_projects

    print_instance(app, set_projects(app, instance, add=name), as_json=False)


@project.command("rm")
@click.argument("instance")
@click.argument("name")
@click.pass_obj
def project_rm(app: App, instance: str, name: str) -> None:
    """Take project NAME's hostname off INSTANCE (its repositories are not touched)."""
    from girofle.cli.new_stack import print_instance
    from girofle.lifecycle.projects import set_projects

    print_instance(app, set_projects(app, instance, remove=name), as_json=False)


@click.group("ca")
def ca() -> None:
    """Girofle's local certificate authority (tls.mode: selfsigned)."""


@ca.command("export")
@click.pass_obj
def ca_export(app: App) -> None:
    """Print the CA certificate (PEM), for clients to trust: curl --cacert, a browser, git."""
    from girofle.edge.ca import ca_paths

    cert = ca_paths(app.home).cert
    if app.config.tls.mode != "selfsigned" or not cert.is_file():
        raise UserError(f"there is no Girofle CA here (tls.mode is {app.config.tls.mode})")
    click.echo(cert.read_text(), nl=False)

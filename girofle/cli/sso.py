"""girofle sso: single sign-on checks and the SAML metadata to give an identity provider."""

from __future__ import annotations

import click

from girofle.cli.common import json_option
from girofle.cli.output import emit_json
from girofle.errors import SsoError, UserError
from girofle.inventory import Instance, read_inventory
from girofle.lifecycle import validate
from girofle.lifecycle.app import App


@click.group("sso")
def sso() -> None:
    """Single sign-on of the instances (girofle.yml sso)."""


def _signing_in(app: App, name: str) -> Instance:
    """The instance ``name``, which must sign in through a provider of sso:."""
    instance = read_inventory(app.home).get(validate.instance_name(name))
    if app.config.sso is None or not app.config.sso.providers(name):
        raise UserError(
            f"{name} does not sign in through a provider: girofle.yml sets no sso for it"
        )
    return instance


@sso.command("check")
@click.argument("name", required=False)
@click.option("--all", "every", is_flag=True, help="Check every instance that uses SSO.")
@json_option
@click.pass_obj
def check(app: App, name: str | None, every: bool, as_json: bool) -> None:
    """Check NAME's (or --all instances') single sign-on: the provider's discovery, the
    client known to it, the callbacks registered, the clocks close enough. One line per
    problem; exit 9 when there is one."""
    from girofle.sso.check import problems

    if (name is None) == (not every):
        raise UserError("give an instance NAME or --all")
    if every:
        sso = app.config.sso
        names = [
            n for n in read_inventory(app.home).instances if sso is not None and sso.providers(n)
        ]
    else:
        names = [name or ""]
    found = {n: problems(app.config, app.home, _signing_in(app, n)) for n in names}
    if as_json:
        emit_json(found)
    else:
        for instance, lines in found.items():
            click.echo(
                f"{instance}: ok"
                if not lines
                else "\n".join(f"{instance}: {line}" for line in lines)
            )
    bad = sum(len(lines) for lines in found.values())
    if bad:
        raise SsoError(f"{bad} single sign-on problem(s) found (listed above)")


@sso.command("metadata")
@click.argument("name")
@click.pass_obj
def metadata(app: App, name: str) -> None:
    """Print NAME's SAML service-provider metadata (XML), to give the identity provider."""
    from girofle.sso.metadata import sp_metadata

    instance = _signing_in(app, name)
    if app.config.sso is None or app.config.sso.saml is None:
        raise UserError("girofle.yml sso has no saml provider")
    click.echo(sp_metadata(app.config, instance), nl=False)

"""girofle host setup, girofle host wrapper."""

from __future__ import annotations

import click

from girofle.errors import UserError
from girofle.lifecycle.app import App


@click.group("host")
def host() -> None:
    """This host: a service account for Girofle, and the wrapper for Docker-only hosts."""


@host.command("setup")
@click.option("--user", default="girofle", show_default=True, help="The account Girofle runs as.")
@click.option(
    "--owner",
    metavar="UID:GID",
    help="The account exists already with these ids (girofle-docker's installer made it): "
    "only give it the files and the schedule.",
)
@click.pass_obj
def setup(app: App, user: str, owner: str | None) -> None:
    """Run once as root: the `girofle` system user and group, its access to the engine,
    the home and data root given to it (secrets 0700/0600), its backup schedule."""
    from girofle.host_setup import setup_host
    from girofle.lifecycle import validate

    validate.instance_name(user)  # a name that is safe in every file it reaches
    ids = None
    if owner is not None:
        uid, sep, gid = owner.partition(":")
        if not (sep and uid.isdigit() and gid.isdigit()):
            raise UserError(f"invalid --owner {owner[:40]!r}: use UID:GID, e.g. 999:999")
        ids = (int(uid), int(gid))
    changes = setup_host(app, user, ids)
    for change in changes:
        click.echo(change, err=True)
    if not changes:
        click.echo(f"nothing to do: this host is set up for Girofle (user {user})", err=True)


@host.command("wrapper")
@click.option("--image", help="The image girofle-docker runs [the one it is printed from].")
def wrapper(image: str | None) -> None:
    """Print girofle-docker, which runs Girofle from its image on a host with only Docker
    (see the README's Install)."""
    from girofle.wrapper import wrapper_script

    click.echo(wrapper_script(image), nl=False)

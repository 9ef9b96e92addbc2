"""The ``girofle`` command line: parses, calls the core, prints. No logic lives here."""

from __future__ import annotations

import logging
import sys

import click

from girofle import __version__
from girofle.cli import output
from girofle.errors import GirofleError
from girofle.home import Home
from girofle.lifecycle.app import App


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="girofle")
@click.option("--debug", is_flag=True, help="Show tracebacks and every engine command.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Girofle runs a fleet of GitLab instances on a Docker host, each its own Compose stack.

    The home (girofle.yml, inventory, rendered stacks, secrets) is $GIROFLE_HOME,
    or ~/.girofle.
    """
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    ctx.obj = App(Home.from_env(), progress=output.progress)


def _register() -> None:
    from girofle.cli import doctor, init, ls, new_stack, power, reconfigure, rm

    for module in (init, new_stack, ls, power, reconfigure, rm, doctor):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Entry point: run the CLI and map Girofle's errors to one line and an exit code."""
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except GirofleError as exc:
        if debug:
            raise
        click.echo(f"girofle: {exc}", err=True)
        sys.exit(exc.exit_code)

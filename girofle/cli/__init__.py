"""The ``girofle`` command line: parses, calls the core, prints. No logic lives here."""

from __future__ import annotations

import sys

import click

from girofle import __version__
from girofle.errors import GirofleError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="girofle")
@click.option("--debug", is_flag=True, help="Show tracebacks and every engine command.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Girofle runs a fleet of GitLab instances, each its own Compose stack."""
    ctx.obj = {"debug": debug}


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
        click.secho(f"girofle: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)

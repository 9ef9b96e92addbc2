"""The ``girofle`` command line: parses, calls the core, prints. No logic lives here."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from girofle import __version__
from girofle.cli import output
from girofle.errors import GirofleError
from girofle.home import Home, check_user
from girofle.lifecycle.app import App

# Each command's module, imported only when that command runs: `girofle ls` stays light.
COMMANDS = {
    "init": "girofle.cli.init:init",
    "edge": "girofle.cli.init:edge",
    "edge-up": "girofle.cli.init:edge_up_alias",
    "edge-down": "girofle.cli.init:edge_down_alias",
    "uninstall": "girofle.cli.init:uninstall_command",
    "host": "girofle.cli.host:host",
    "up": "girofle.cli.init:up",
    "new-stack": "girofle.cli.new_stack:new_stack_command",
    "ls": "girofle.cli.ls:ls",
    "nodes": "girofle.cli.nodes:nodes",
    "move": "girofle.cli.move:move",
    "start": "girofle.cli.power:start",
    "stop": "girofle.cli.power:stop",
    "restart": "girofle.cli.power:restart",
    "reconfigure": "girofle.cli.reconfigure:reconfigure",
    "rm": "girofle.cli.rm:rm",
    "doctor": "girofle.cli.doctor:doctor",
    "backup": "girofle.cli.backup:backup",
    "backups": "girofle.cli.backup:backups",
    "cron": "girofle.cli.cron:cron",
    "routes": "girofle.cli.edge:routes",
    "project": "girofle.cli.edge:project",
    "ca": "girofle.cli.edge:ca",
    "restore": "girofle.cli.backup:restore",
    "image": "girofle.cli.image:image",
    "upgrade": "girofle.cli.upgrade:upgrade",
    "drill": "girofle.cli.drill:drill_command",
    "sso": "girofle.cli.sso:sso",
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (Click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    home = Home.from_env()
    warning = check_user(home)
    if warning is not None:
        click.echo(f"girofle: warning: {warning}", err=True)
    ctx.obj = App(home, progress=output.progress)


def main() -> None:
    """Entry point: run the CLI and map Girofle's errors to one line and an exit code."""
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.exceptions.NoArgsIsHelpError as exc:
        # `girofle` or `girofle ca` alone: the help is what was asked for.
        click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        sys.exit(0)
    except click.UsageError as exc:
        # One line, like every other refusal: what is wrong, and where the help is.
        where = exc.ctx.command_path if exc.ctx is not None else "girofle"
        click.echo(f"girofle: {exc.format_message()} (see `{where} --help`)", err=True)
        sys.exit(exc.exit_code)
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

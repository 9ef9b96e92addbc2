"""Options and printing shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from girofle.lifecycle.plan import Plan
from girofle.lifecycle.validate import SettingPairs

F = TypeVar("F", bound=Callable[..., Any])

dry_run_option = click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would change (files with a diff) and change nothing.",
)
wide_option = click.option(
    "--wide", is_flag=True, help="One line per row, however wide (default: fit the terminal)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
# Where a backup to restore (or drill) is.
source_option = click.option(
    "--from",
    "source",
    type=click.Choice(["local", "remote"]),
    default="local",
    show_default=True,
    help="A local backup, or one fetched from the remote.",
)


def set_option(command: F) -> F:
    """--set KEY=VALUE and --set-json KEY=JSON, gathered as one SettingPairs (``settings``)."""

    def gather(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
        ctx.meta[f"girofle.{param.name}"] = value

    def combine(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> SettingPairs:
        return SettingPairs(plain=value, json=ctx.meta.get("girofle.set_json", ()))

    command = click.option(
        "--set-json",
        "set_json",
        multiple=True,
        metavar="KEY=JSON",
        expose_value=False,
        is_eager=True,
        callback=gather,
        help="A gitlab.rb setting whose value is JSON: a list, a hash, null, a string "
        "that looks like a number (repeatable).",
    )(command)
    return click.option(
        "--set",
        "settings",
        multiple=True,
        metavar="KEY=VALUE",
        callback=combine,
        help=(
            "A gitlab.rb setting, e.g. gitlab_rails.time_zone=UTC (repeatable): KEY is "
            "section.key[.subkey...], each part [a-z0-9_], its section one GitLab's "
            "gitlab.rb.template knows; VALUE is true, false, an integer, or else a string. "
            "Settings Girofle renders itself (external_url, nginx listen and real_ip, ssh "
            "port, letsencrypt) are refused."
        ),
    )(command)


def print_plan(plan: Plan) -> None:
    click.echo(plan.render(), nl=False)

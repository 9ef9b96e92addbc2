"""Options and printing shared by several commands."""

from __future__ import annotations

import click

from girofle.lifecycle.plan import Plan

dry_run_option = click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would change (files with a diff) and change nothing.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
set_option = click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help=(
        "A gitlab.rb setting, e.g. gitlab_rails.time_zone=UTC (repeatable). Its top-level "
        "name must be one GitLab's gitlab.rb.template knows; settings Girofle renders "
        "itself (external_url, nginx listen and real_ip, ssh port, letsencrypt) are refused."
    ),
)


def print_plan(plan: Plan) -> None:
    click.echo(plan.render(), nl=False)

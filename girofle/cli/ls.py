"""girofle ls."""

from __future__ import annotations

import datetime as dt

import click

from girofle.cli.common import json_option, wide_option
from girofle.cli.output import emit_json, table
from girofle.inventory import DrillRecord
from girofle.lifecycle.app import App
from girofle.lifecycle.fleet import fleet_status


def last_backup_cell(when: dt.datetime | None, result: str | None) -> str:
    """The time of the last complete backup and, when the last attempt failed, that."""
    cell = when.strftime("%Y-%m-%d %H:%M:%SZ") if when else "-"
    if result and result != "ok":
        cell += " (last attempt failed)"
    elif result == "ok":
        cell += " ok"
    return cell


def last_drill_cell(record: DrillRecord | None) -> str:
    """When, which backup, and ok or the first failure."""
    if record is None:
        return "-"
    verdict = "ok" if record.ok else f"FAILED: {record.detail}"
    return f"{record.at.strftime('%Y-%m-%d %H:%M:%SZ')} {record.backup_id} {verdict}"


@click.command("ls")
@click.option(
    "--all", "show_all", is_flag=True, help="Also list decommissioned instances (kept data)."
)
@json_option
@wide_option
@click.pass_obj
def ls(app: App, show_all: bool, as_json: bool, wide: bool) -> None:
    """List the instances with their state, URLs, (address, port) pairs, image and version
    (decommissioned ones only with --all)."""
    rows = [r for r in fleet_status(app) if show_all or r.state != "decommissioned"]
    if as_json:
        emit_json([row.as_json() for row in rows])
        return
    # On a swarm, which node runs each instance.
    nodes = app.config.target == "swarm"
    table(
        [
            "name",
            "state",
            *(["node"] if nodes else []),
            "urls",
            "ssh",
            "http",
            "image",
            "version",
            "last backup",
            "last drill",
        ],
        [
            [
                r.name,
                r.state,
                *([r.node or "-"] if nodes else []),
                " ".join(r.urls),
                r.ssh,
                r.http or "-",
                r.image,
                (r.version or "-") + (f" -> {r.upgrade_target}" if r.upgrade_target else ""),
                last_backup_cell(r.last_backup, r.last_backup_result),
                last_drill_cell(r.last_drill),
            ]
            for r in rows
        ],
        wide=wide,
    )
    for r in rows:
        if r.state == "upgrade-failed" and r.upgrade_target:
            click.echo(
                f"{r.name}: its upgrade to {r.upgrade_target} stopped; rerun "
                f"`girofle upgrade {r.name} --to {r.upgrade_target}`",
                err=True,
            )
        if r.state == "restore-failed" and r.finish_restore:
            click.echo(f"{r.name}: its restore did not finish; run `{r.finish_restore}`", err=True)

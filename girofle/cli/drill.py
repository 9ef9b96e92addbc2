"""girofle drill."""

from __future__ import annotations

import click

from girofle.backup.drill import DrillReport, drill
from girofle.cli.common import json_option, source_option
from girofle.cli.output import emit_json, table
from girofle.errors import BackupError
from girofle.lifecycle import validate
from girofle.lifecycle.app import App
from girofle.lifecycle.fleet import live_names


def _as_json(report: DrillReport) -> dict[str, object]:
    return {
        "instance": report.instance,
        "backup": report.backup_id,
        "source": report.source,
        "ok": report.ok,
        "detail": report.detail,
        "durations": report.durations,
    }


@click.command("drill")
@click.argument("instance", required=False)
@click.option("--all", "everything", is_flag=True, help="Every instance, one after the other.")
@source_option
@click.option("--backup", "backup_id", default="latest", show_default=True, help="Which backup.")
@click.option("--scheduled", is_flag=True, hidden=True, help="As drills.schedule runs it.")
@json_option
@click.pass_obj
def drill_command(
    app: App,
    instance: str | None,
    everything: bool,
    source: str,
    backup_id: str,
    scheduled: bool,
    as_json: bool,
) -> None:
    """Restore a backup into a throwaway GitLab nobody can reach, check it, remove it.

    The check: every project of the backup's manifest, each repository's branches, tags and
    commit count as recorded, `git fsck`, every wiki page, and gitlab:doctor:secrets. The
    verdict is recorded (`girofle ls` shows it). The live instance is never touched.
    Exit 6 when a drill fails.
    """
    if everything == (instance is not None):
        raise click.UsageError("give one INSTANCE or --all")
    if everything and backup_id != "latest":
        raise click.UsageError("--backup names one backup of one instance")
    if scheduled and instance is not None:
        from girofle.backup.schedule import run_scheduled_drill

        # What cron runs: drills.source, logged in the instance's run logs.
        if not run_scheduled_drill(app.home, validate.instance_name(instance)):
            raise BackupError(f"the scheduled drill of {instance} failed (see girofle ls)")
        return
    names = [instance] if instance is not None else live_names(app)
    # One at a time: each drill is a whole GitLab (and the host runs one drill at a time).
    reports = [drill(app, name, source, backup_id) for name in names]
    if as_json:
        emit_json([_as_json(r) for r in reports])
    elif everything:
        table(
            ["instance", "backup", "result", "seconds"],
            [[r.instance, r.backup_id, r.detail, f"{r.durations['total']:.0f}"] for r in reports],
        )
    else:
        (report,) = reports
        click.echo(f"{report.instance}: drill of {report.backup_id}: {report.detail}", err=True)
    failed = [r for r in reports if not r.ok]
    if failed:
        first = failed[0]
        raise BackupError(
            f"the drill of {first.instance} {first.backup_id} failed: {first.detail}"
            if len(reports) == 1
            else f"{len(failed)} of {len(reports)} drills failed"
        )

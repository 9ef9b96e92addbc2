"""girofle upgrade."""

from __future__ import annotations

from pathlib import Path

import click

from girofle.cli.common import json_option
from girofle.cli.output import emit_json, table
from girofle.errors import UpgradeError
from girofle.lifecycle.app import App
from girofle.lifecycle.fleet import live_names, over_fleet
from girofle.upgrade.path import UpgradePaths
from girofle.upgrade.run import dry_run_lines, plan_upgrade, upgrade_instance

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("upgrade")
@click.argument("instance", required=False)
@click.option("--all", "everything", is_flag=True, help="Every instance of the fleet.")
@click.option("--to", "target", required=True, help="The GitLab version to reach, e.g. 19.0.1.")
@click.option("--dry-run", is_flag=True, help="Print the path and the backups; change nothing.")
@click.option(
    "--rollback-on-failure",
    is_flag=True,
    help="If a hop fails, restore the pre-upgrade backup on the starting version.",
)
@click.option(
    "--migrations-timeout",
    type=click.FloatRange(min=1),
    default=48 * 3600,
    show_default=True,
    help="Seconds to wait for each hop's batched background migrations.",
)
@click.option("--path-file", type=FILE, help="A newer copy of GitLab's config/upgrade_path.yml.")
@click.option("--versions-file", type=FILE, help="A newer list of each minor's latest patch.")
@json_option
@click.pass_obj
def upgrade(
    app: App,
    instance: str | None,
    everything: bool,
    target: str,
    dry_run: bool,
    rollback_on_failure: bool,
    migrations_timeout: float,
    path_file: Path | None,
    versions_file: Path | None,
    as_json: bool,
) -> None:
    """Upgrade an instance (or --all) to GitLab --to VERSION along GitLab's required stops.

    Before anything changes: healthy, no background migration pending, gitlab:doctor:secrets
    clean, room for a backup, every image on this engine. Then, for each hop: a verified
    backup, the container replaced on the hop's image (the old one stops first), healthy,
    the version checked, background migrations waited for, the hop journalled: a rerun after
    a kill resumes at its hop. A hop that does not boot is undone from its backup (the
    failed volumes are kept aside). Exit 8 when an upgrade stopped.
    """
    if everything == (instance is not None):
        raise click.UsageError("give one INSTANCE or --all")
    paths = UpgradePaths.load(path_file, versions_file)
    names = [instance] if instance is not None else live_names(app)
    if dry_run:
        plans = [plan_upgrade(app, n, target, paths) for n in names]
        if as_json:
            emit_json(
                [
                    {
                        "name": p.name,
                        "from": p.current,
                        "hops": [{"version": h.version, "image": h.image} for h in p.hops],
                        "backups": len(p.hops),
                    }
                    for p in plans
                ]
            )
            return
        for plan in plans:
            for line in dry_run_lines(plan):
                click.echo(line)
        return

    def one(name: str) -> str:
        report = upgrade_instance(
            app, name, target, paths, rollback=rollback_on_failure, timeout=migrations_timeout
        )
        if report.hops_done == 0:
            return f"already on {report.version}"
        hops = f"{report.hops_done} hop{'' if report.hops_done == 1 else 's'}"
        return f"{report.started_on} -> {report.version} ({hops})"

    if instance is not None:
        click.echo(f"{instance}: {one(instance)}", err=True)
        return
    app.engine.ping()
    outcomes = over_fleet(app, names, one)
    if as_json:
        emit_json([{"name": o.name, "ok": o.ok, "detail": o.detail} for o in outcomes])
    else:
        table(["instance", "result"], [[o.name, o.detail] for o in outcomes])
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise UpgradeError(f"the upgrade failed for {len(failed)} of {len(outcomes)} instance(s)")

"""girofle backup, girofle backups, girofle restore."""

from __future__ import annotations

from pathlib import Path

import click

from girofle.cli.common import json_option, source_option
from girofle.cli.output import emit_json, table
from girofle.config import RemoteSettings, ToolsSettings
from girofle.errors import GirofleError
from girofle.lifecycle.app import App


class DefaultToCreate(click.Group):
    """`girofle backup NAME` means `girofle backup create NAME`; `verify` is a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in {*self.commands, "-h", "--help"}:
            args = ["create", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultToCreate, invoke_without_command=False)
def backup() -> None:
    """Back up an instance (girofle backup NAME|--all), or check backups (verify)."""


@backup.command("create")
@click.argument("name", required=False)
@click.option("--all", "everything", is_flag=True, help="Every running instance.")
@click.option(
    "--girofle",
    "home",
    is_flag=True,
    help="Girofle's own configuration and state, into <data_root>/sauvegardes.",
)
@click.option("--remote", is_flag=True, help="Also push the backup to girofle.yml's remote.")
@click.option(
    "--quiesced",
    is_flag=True,
    help="Stop puma and sidekiq for the backup, and leave them stopped (what `move` takes).",
)
@json_option
@click.pass_obj
def create(
    app: App,
    name: str | None,
    everything: bool,
    home: bool,
    remote: bool,
    quiesced: bool,
    as_json: bool,
) -> None:
    """Back up NAME (or --all): gitlab-backup, backup-etc, logs and a manifest."""
    from girofle.backup.instance import backup_instance
    from girofle.lifecycle.fleet import live_names, over_fleet

    if home:
        from girofle.backup.home import backup_home

        if name is not None or everything:
            raise click.UsageError("--girofle takes no NAME and no --all")
        click.echo(backup_home(app, remote=remote))
        return
    if everything == (name is not None):
        raise click.UsageError("give one NAME or --all")
    if quiesced and everything:
        raise click.UsageError("--quiesced stops an instance's services: give one NAME")
    if name is not None:
        ref = backup_instance(app, name, remote=remote, quiesced=quiesced)
        if as_json:
            pushed = ref.pushed
            emit_json(
                {
                    "instance": name,
                    "backup": ref.backup_id,
                    "path": str(ref.path),
                    "manifest": ref.manifest.model_dump(mode="json"),
                    "remote": None
                    if pushed is None
                    else {
                        "snapshot": pushed.snapshot_id,
                        "data_added": pushed.data_added,
                        "bytes_processed": pushed.bytes_processed,
                        "seconds": pushed.seconds,
                    },
                }
            )
        else:
            click.echo(ref.backup_id)
        return
    outcomes = over_fleet(app, live_names(app), lambda n: backup_instance(app, n, remote=remote))
    table(["instance", "result"], [[o.name, o.detail] for o in outcomes])
    if not all(o.ok for o in outcomes):
        raise GirofleError(f"backup failed for {sum(not o.ok for o in outcomes)} instance(s)")


@backup.command("verify")
@click.argument("name", required=False)
@click.pass_obj
def verify_command(app: App, name: str | None) -> None:
    """Check every local backup (of NAME, or of all instances) against its manifest."""
    from girofle.backup.instance import list_backups
    from girofle.backup.manifest import verify
    from girofle.inventory import read_inventory

    names = [name] if name else sorted(read_inventory(app.home).instances)
    bad = 0
    for each in names:
        for ref in list_backups(app, each):
            try:
                verify(ref.path)
                click.echo(f"{each}\t{ref.backup_id}\tok")
            except GirofleError as err:
                bad += 1
                click.echo(f"{each}\t{ref.backup_id}\tBAD: {err}")
    if app.config.remote is not None:
        from girofle.backup.remote import restic_for

        restic = restic_for(app.config.remote, app.home.root, app.config.tools)
        try:
            restic.run(["check"])
            click.echo(f"remote\t{app.config.remote.repository}\tok")
        except GirofleError as err:
            bad += 1
            click.echo(f"remote\t{app.config.remote.repository}\tBAD: {err}")
    if bad:
        raise GirofleError(f"{bad} backup(s) or repositories failed their check")


@backup.command("scheduled")
@click.argument("name")
@click.pass_obj
def scheduled(app: App, name: str) -> None:
    """Run one scheduled backup of NAME now, as its schedule would (what cron jobs run).

    It is pushed when a remote is set and the policy's push is on; the run is logged to
    <data_root>/noeud-gitlab-NAME/bckups/runs/.
    """
    from girofle.backup.schedule import run_scheduled
    from girofle.lifecycle import validate

    if not run_scheduled(app.home, validate.instance_name(name)):
        raise GirofleError(f"the scheduled backup of {name} failed (see girofle ls)")


@backup.command("daemon")
@click.argument("name")
@click.pass_obj
def daemon(app: App, name: str) -> None:
    """Run NAME's backups on girofle.yml's schedule, in the foreground, until stopped.

    This is what each instance's backup sidecar runs; girofle.yml is re-read every minute.
    """
    from girofle.backup.schedule import run_daemon
    from girofle.lifecycle import validate

    run_daemon(app.home, validate.instance_name(name))


@click.command("backups")
@click.argument("name", required=False)
@click.option("--remote", is_flag=True, help="List what the remote holds instead.")
@json_option
@click.pass_obj
def backups(app: App, name: str | None, remote: bool, as_json: bool) -> None:
    """List the backups of NAME, or of every instance (local, or --remote)."""
    from girofle.backup.instance import local_backups
    from girofle.inventory import read_inventory

    if remote:
        from girofle.backup.remote import restic_for

        restic = restic_for(app.config.remote, app.home.root, app.config.tools)
        tags = {"instance": name} if name else {}
        snapshots = [
            {
                "instance": s.tags.get("instance", "girofle"),
                "backup": s.tags.get("backup", "?"),
                "snapshot": s.snapshot_id,
                "kind": s.tags.get("kind", "?"),
                "parent": s.parent,
            }
            for s in restic.snapshots(tags)
        ]
        if as_json:
            emit_json(snapshots)
        else:
            table(
                ["instance", "backup", "snapshot"],
                [
                    [r["instance"] or "-", r["backup"] or "-", r["snapshot"] or "-"]
                    for r in snapshots
                ],
            )
        return
    names = [name] if name else sorted(read_inventory(app.home).instances)
    rows = [row for each in names for row in local_backups(app, each)]
    if as_json:
        emit_json(rows)
        return
    table(
        ["instance", "backup", "gitlab", "bytes", "projects"],
        [
            [
                r["instance"],
                r["backup"],
                r["gitlab_version"] or "-",
                str(r["size"]),
                str(len(r["projects"])),
            ]
            for r in rows
        ],
    )


@click.command("restore")
@click.argument("name", required=False)
@click.option(
    "--backup",
    "backup_id",
    default="latest",
    show_default=True,
    help="Backup id (see `girofle backups NAME`) or latest.",
)
@source_option
@click.option("--as", "as_name", help="Restore into a new instance of this name.")
@click.option("--force", is_flag=True, help="Restore over a live instance (after a safety backup).")
@click.option(
    "--girofle", "home", is_flag=True, help="Rebuild this (empty) home from Girofle's own backup."
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --girofle: the data root holding sauvegardes/ [HOME/data].",
)
@click.option("--repository", help="With --girofle --from remote: the restic repository.")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --girofle --from remote: the repository's 0600 password file.",
)
@click.option(
    "--ssh-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --girofle --from remote: the key for an sftp repository.",
)
@click.option("--sftp-command", help="With --girofle --from remote: restic's sftp.command.")
@click.option(
    "--known-hosts",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --girofle --from remote: the sftp server's host keys (known_hosts format).",
)
@click.option(
    "--tools-image",
    envvar="GIROFLE_TOOLS_IMAGE",
    help="With --girofle --from remote: the tools image to run restic in.",
)
@json_option
@click.pass_obj
def restore(
    app: App,
    name: str | None,
    backup_id: str,
    source: str,
    as_name: str | None,
    force: bool,
    home: bool,
    data_root: Path | None,
    repository: str | None,
    password_file: Path | None,
    ssh_key: Path | None,
    sftp_command: str | None,
    known_hosts: Path | None,
    tools_image: str | None,
    as_json: bool,
) -> None:
    """Restore instance NAME from a backup, on its exact GitLab version
    (or, with --girofle, this empty home from Girofle's own backup)."""
    from girofle.backup.restore import restore_instance

    if home:
        remote = None
        if repository is not None:
            remote = RemoteSettings(
                repository=repository,
                password_file=password_file,
                ssh_key=ssh_key,
                sftp_command=sftp_command,
                known_hosts=known_hosts,
            )
        _restore_home(app, name, backup_id, source, data_root, remote, tools_image)
        return
    if name is None:
        raise click.UsageError("give the NAME of an instance, or --girofle")
    report = restore_instance(app, name, backup_id, as_name, force, from_remote=source == "remote")
    if as_json:
        emit_json(
            {
                "instance": report.instance,
                "backup": report.backup_id,
                "gitlab_version": report.gitlab_version,
                "safety_backup": report.safety_backup,
                "projects": [p.model_dump(include={"path", "wiki_pages"}) for p in report.projects],
                "durations": report.durations,
            }
        )
        return
    click.echo(
        f"{report.instance}: restored from {report.backup_id} "
        f"(GitLab {report.gitlab_version}, {len(report.projects)} projects); "
        "gitlab:doctor:secrets passes",
        err=True,
    )


def _restore_home(
    app: App,
    name: str | None,
    backup_id: str,
    source: str,
    data_root: Path | None,
    remote: RemoteSettings | None,
    tools_image: str | None,
) -> None:
    from girofle.backup.home import restore_home, sauvegardes

    if name is not None:
        raise click.UsageError("--girofle takes no NAME")
    root = data_root or app.home.root / "data"
    if source == "remote":
        from girofle.backup.remote import Restic, fetch_into, pick

        if remote is None:
            raise click.UsageError("--girofle --from remote needs --repository")
        tools = ToolsSettings(image=tools_image) if tools_image else ToolsSettings()
        restic = Restic(remote, app.home.root, tools)
        snapshot = pick(restic.snapshots({"kind": "girofle"}), backup_id, "Girofle's home")
        backup_id = snapshot.tags["backup"]
        sauvegardes(root).mkdir(parents=True, exist_ok=True)
        fetch_into(restic, snapshot, sauvegardes(root) / backup_id)
    chosen = restore_home(app, root, backup_id)
    if app.config.routing == "traefik":
        from girofle.lifecycle.init import start_edge

        start_edge(app)
    click.echo(
        f"home {app.home.root} restored from {chosen}; "
        "now `girofle restore NAME` brings each instance back",
        err=True,
    )

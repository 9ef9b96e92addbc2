"""Restoring an instance from a backup, in the order GitLab documents (reference §6).

Checksums first (a damaged backup is refused before anything changes), then an instance
on the backup's exact GitLab version, its secrets and gitlab.rb, reconfigure, puma and
sidekiq stopped, `gitlab-backup restore`, a restart, and `gitlab:doctor:secrets`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from girofle.backup import api
from girofle.backup.instance import (
    CONFIG_ARCHIVES,
    SECRETS_FILE,
    BackupRef,
    backup_instance,
    find_backup,
    maintenance,
    refuse_while_gitlab_backs_up,
    require_secrets,
)
from girofle.backup.manifest import Manifest, ProjectEntry, verify
from girofle.backup.probe import GITLAB_ARCHIVE_SUFFIX, GITLAB_BACKUPS
from girofle.errors import (
    BackupError,
    DockerError,
    EngineUnavailableError,
    GirofleError,
    UserError,
)
from girofle.inventory import Instance, RestoreRecord, editing, now, read_inventory
from girofle.lifecycle import commission, converge, power, validate
from girofle.lifecycle.app import App
from girofle.lifecycle.converge import GITLAB_VERSION_FILE
from girofle.lifecycle.routes import wait_routed
from girofle.targets.on_node import delegated, run_there
from girofle.timing import timed

GIT_UID = 998  # the image's fixed uid for git (reference §1.4)
# What /etc/gitlab must get back before the data: the secrets above all (reference §5.2),
# and what GitLab's restore documentation says must match: the SSH host keys (generated
# into /etc/gitlab at the first boot; clients know them) and trusted-certs/.
CONFIG_FILES = (SECRETS_FILE, "gitlab.rb")
CONFIG_PATTERNS = ("ssh_host_*_key", "ssh_host_*_key.pub", "trusted-certs/*")
# Gitlab::Doctor::Secrets#run! logs "- <Model> failures: N" and "Total: N row(s) affected"
# and the rake task exits 0 whatever it finds (reference F6): the output is the verdict.
DOCTOR_FAILURES = re.compile(r"^.*- (\S+) failures: (\d+)\s*$", re.MULTILINE)
DOCTOR_TOTAL = re.compile(r"Total: (\d+) row\(s\) affected")


@dataclass(frozen=True)
class RestoreReport:
    instance: str
    backup_id: str
    gitlab_version: str
    projects: list[ProjectEntry]
    safety_backup: str | None
    durations: dict[str, float] = field(default_factory=dict)


def _prepare_target(app: App, target: str, manifest: Manifest, record: RestoreRecord) -> None:
    """An instance named ``target`` running the backup's version (checked once, before
    the data changes). Restoring over a live instance takes a safety backup of it first
    (its id goes into ``record``); a resumed restore has done so already, or commissioned
    the target itself."""
    existing = _recorded_target(app, target)
    ours = record.fresh or record.safety_backup is not None
    if existing is not None and existing.state != "decommissioned":
        if not ours:
            _check_version(app, target, manifest)  # before the safety backup changes anything
            app.progress(f"{target}: taking a safety backup before restoring over it")
            safety = backup_instance(app, target).backup_id
            _save_record(app, target, record.model_copy(update={"safety_backup": safety}))
            return
        if existing.state in ("creating", "failed"):  # our commission, interrupted
            commission.new_stack(app, commission.NewStackRequest(name=target))
        elif existing.state == "stopped":
            power.start(app, target)
    else:
        if existing is not None:  # decommissioned: its pairs are free again, commission anew
            with editing(app.home) as inventory:
                del inventory.instances[target]
        # Recorded before commissioning: a rerun after a kill in the middle knows it is ours.
        _save_record(app, target, record.model_copy(update={"fresh": True}))
        projects = tuple(manifest.web_projects)
        app.progress(f"{target}: commissioning it on {manifest.image}")
        assert manifest.image is not None
        commission.new_stack(
            app, commission.NewStackRequest(name=target, projects=projects, image=manifest.image)
        )
    _check_version(app, target, manifest)


def _recorded_target(app: App, target: str) -> Instance | None:
    """The target as the inventory has it; one whose container is not on this engine (a
    home restored on a new host) counts as decommissioned."""
    existing = read_inventory(app.home).instances.get(target)
    if existing is not None and app.engine.container(app.target.container(target)) is None:
        return existing.model_copy(update={"state": "decommissioned"})
    return existing


def _check_version(app: App, target: str, manifest: Manifest) -> None:
    # A restore resumed after a kill may find the restart the killed run asked for still
    # under way in the engine: the version is read once the container runs again.
    container = app.target.container(target)
    running = _exec_through_restart(app, container, ["cat", GITLAB_VERSION_FILE]).strip()
    if running != manifest.gitlab_version:
        raise BackupError(
            f"the backup is of GitLab {manifest.gitlab_version}, {target} runs {running}: "
            "GitLab restores only onto the exact same version"
        )


def _save_record(app: App, target: str, record: RestoreRecord | None) -> None:
    """Record (or, with None, forget) the restore under way onto ``target``."""
    with editing(app.home) as inventory:
        if record is None:
            inventory.restores.pop(target, None)
        else:
            inventory.restores[target] = record


def _begin(
    app: App, name: str, target: str, backup_id: str, force: bool
) -> tuple[str, RestoreRecord | None]:
    """The backup to restore: an unfinished restore onto ``target`` is resumed (its backup,
    not the safety backup taken since, which is now the newest); else ``backup_id``."""
    record = read_inventory(app.home).restores.get(target)
    if record is None:
        existing = _recorded_target(app, target)
        if existing is not None and existing.state != "decommissioned" and not force:
            raise UserError(
                f"instance {target!r} exists: restoring over it needs --force "
                "(Girofle takes a safety backup of it first)"
            )
        return backup_id, None
    if record.source == name and backup_id in ("latest", record.backup_id):
        app.progress(f"{target}: resuming the unfinished restore of {name} {record.backup_id}")
        return record.backup_id, record
    if not force:
        raise UserError(
            f"{target} has an unfinished restore ({record.command(target)}): run that to "
            "finish it, or add --force to restore another backup over it"
        )
    return backup_id, record


def config_archive(ref: BackupRef) -> Path:
    archives = sorted((ref.path / "config").glob(CONFIG_ARCHIVES))
    if len(archives) != 1:
        raise BackupError(f"backup {ref.backup_id} has {len(archives)} config archives, not one")
    return archives[0]


def _wanted(relative: PurePosixPath) -> bool:
    return str(relative) in CONFIG_FILES or any(relative.match(p) for p in CONFIG_PATTERNS)


def _put_back_config(app: App, ref: BackupRef, container: str) -> list[str]:
    """Secrets, gitlab.rb, SSH host keys and trusted-certs/ from the backup-etc archive into
    /etc/gitlab, through the engine; return what was put back. Members are named
    /etc/gitlab/... (backup-etc's tar --absolute-names); only regular files directly
    matching are written, 0600 (0644 for public keys and certificates), owned by the
    container's root as GitLab has them, never outside the config directory."""
    files: dict[str, tuple[bytes, int]] = {}
    with tarfile.open(config_archive(ref)) as tar:
        for member in tar.getmembers():
            try:
                relative = PurePosixPath(member.name).relative_to("/etc/gitlab")
            except ValueError:
                continue
            if not member.isfile() or ".." in relative.parts or not _wanted(relative):
                continue
            source = tar.extractfile(member)
            assert source is not None
            public = (
                relative.suffix in (".pub", ".crt", ".pem") or relative.parts[0] == "trusted-certs"
            )
            files[str(relative)] = (source.read(), 0o644 if public else 0o600)
    app.engine.put_files(container, "/etc/gitlab", files)
    return sorted(files)


# How a process in a container ends when the container stops under it: SIGKILL or SIGTERM.
KILLED = (137, 143)
# What the engine says when an exec cannot start because the container is stopping.
CANNOT_EXEC = (
    "OCI runtime exec failed",
    "is not running",
    "is restarting",
    "cannot exec in a stopped state",
)


def _exec_through_restart(app: App, container: str, argv: list[str]) -> str:
    """exec ``argv``; if the container restarted under it (a restart a killed Girofle asked
    for goes on in the engine without its client), run it again once the container runs."""
    before = app.engine.started_at(container)
    try:
        return app.engine.exec(container, argv)
    except DockerError as err:
        grace = app.config.gitlab.stop_grace_period + 120
        # A step can also fail on its own terms while GitLab shuts down (its database is
        # stopped first): the engine's own state says whether that is what happened.
        stopping = (
            err.returncode in KILLED
            or any(sign in str(err) for sign in CANNOT_EXEC)
            or app.engine.stopping(container)
            or app.engine.started_at(container) != before
        )
        if not stopping or not app.engine.wait_restart(container, before, grace):
            raise
        app.progress(f"{container} restarted meanwhile; once healthy, `{' '.join(argv)}` again")
        # A restart boots GitLab anew (its own reconfigure first): wait for the end of it.
        app.engine.wait_healthy(container, app.config.gitlab.health_timeout)
        return app.engine.exec(container, argv)


def _wait_out_restart(app: App, container: str) -> None:
    """If the engine is stopping or restarting ``container``, wait for the end of it (and,
    once it runs again, for GitLab's boot)."""
    if not app.engine.stopping(container):
        return
    app.progress(f"{container} is being restarted; waiting for it")
    grace = app.config.gitlab.stop_grace_period + 120
    if not app.engine.wait_settled(container, grace):
        raise DockerError(f"{container} is still stopping after {grace} s")
    if app.engine.started_at(container) is not None:
        app.engine.wait_healthy(container, app.config.gitlab.health_timeout)


def _stage_archive(app: App, archive: Path, container: str, staged: str) -> None:
    """Copy GitLab's archive into its backup directory, as git's, through the engine
    (the directory is git's, 0700; restore runs as git and must read it, reference §6.1)."""
    app.engine.exec(container, ["mkdir", "-p", GITLAB_BACKUPS])
    app.engine.copy_in(archive, container, staged)
    app.engine.exec(container, ["chown", f"{GIT_UID}:{GIT_UID}", staged])
    app.engine.exec(container, ["chmod", "0600", staged])


def _start_again(app: App, target: str, container: str) -> None:
    """After a failed `gitlab-backup restore`, start puma and sidekiq again, so that the
    instance answers while the operator looks (a rerun stops them once more)."""
    app.progress(f"{target}: the restore failed; starting puma and sidekiq again")
    for service in ("puma", "sidekiq"):
        with contextlib.suppress(GirofleError):
            app.engine.exec(container, ["gitlab-ctl", "start", service])
    with contextlib.suppress(GirofleError):  # the restore's own failure is what to say
        maintenance(app, container, False)


def doctor_failures(output: str) -> list[str]:
    """What gitlab:doctor:secrets found undecryptable ("Model: N" each), from its output;
    an output with no Total line is a failure too (the task did not finish)."""
    failures = [f"{m}: {n}" for m, n in DOCTOR_FAILURES.findall(output) if int(n) > 0]
    total = DOCTOR_TOTAL.search(output)
    if total is None:
        return [*failures, "no 'Total: N row(s) affected' line"]
    if int(total.group(1)) > 0 and not failures:
        failures.append(f"Total: {total.group(1)} row(s)")
    return failures


def fetch_remote_backup(app: App, name: str, backup_id: str, directory: Path | None = None) -> str:
    """Bring an instance backup from the remote into ``directory`` (by default its local
    bckups/); return its id."""
    from girofle.backup.instance import backups_dir
    from girofle.backup.remote import fetch_into, pick, restic_for

    restic = restic_for(app.config.remote, app.home.root, app.config.tools)
    snapshot = pick(restic.snapshots({"kind": "instance", "instance": name}), backup_id, name)
    chosen = snapshot.tags["backup"]
    app.progress(f"{name}: fetching {chosen} from {restic.remote.repository}")
    directory = directory or backups_dir(app, name)
    directory.mkdir(parents=True, exist_ok=True)
    fetch_into(restic, snapshot, directory / chosen)
    return chosen


def restore_instance(
    app: App,
    name: str,
    backup_id: str = "latest",
    as_name: str | None = None,
    force: bool = False,
    from_remote: bool = False,
) -> RestoreReport:
    """Restore backup ``backup_id`` of ``name`` onto ``as_name`` (default: ``name``).

    The restore is recorded in the inventory before anything changes and forgotten only
    once gitlab:doctor:secrets passed: a rerun after a kill or a failure resumes it.
    """
    started = time.monotonic()
    validate.instance_name(name)
    target = validate.instance_name(as_name or name)
    if delegated(app.config):
        return _restore_on_node(app, name, target, backup_id, force, from_remote)
    backup_id, unfinished = _begin(app, name, target, backup_id, force)
    if from_remote:
        backup_id = fetch_remote_backup(app, name, backup_id)
    ref = find_backup(app, name, backup_id)
    app.progress(f"{name}: checking backup {ref.backup_id} against its manifest")
    manifest = verify(ref.path)
    require_secrets(config_archive(ref))
    app.engine.ping()
    record = RestoreRecord(
        source=name,
        backup_id=ref.backup_id,
        fresh=unfinished is not None and unfinished.fresh,
        safety_backup=unfinished.safety_backup if unfinished else None,
        started_at=now(),
        pid=os.getpid(),
    )
    _save_record(app, target, record)
    prepared: dict[str, float] = {}
    with timed(prepared, "prepare_target"):  # a commission or a safety backup
        _prepare_target(app, target, manifest, record)
    record = read_inventory(app.home).restores[target]
    with app.home.lock(f"instance-{target}", wait=False):
        try:
            report = _restore_locked(app, ref, manifest, target, record.safety_backup)
        except GirofleError as err:
            _save_record(app, target, record.model_copy(update={"failed": str(err)}))
            # An engine that stopped answering stays exit 4; any other failure is a failed
            # restore, exit 6.
            kind = err if isinstance(err, EngineUnavailableError | BackupError) else None
            finish = record.command(target)
            message = f"{err}; to finish the restore, run `{finish}`"
            raise (type(kind)(message) if kind else BackupError(message)) from None
    _save_record(app, target, None)
    report.durations.update(prepared)
    report.durations["total"] = round(time.monotonic() - started, 3)
    return report


def _restore_on_node(
    app: App, name: str, target: str, backup_id: str, force: bool, from_remote: bool
) -> RestoreReport:
    """The restore run by Girofle on the target's swarm node, where its data and its
    backups are; that node keeps the restore's record, so a rerun there resumes it."""
    inventory = read_inventory(app.home)
    instance = inventory.instances.get(target)
    if instance is None or instance.state != "running":
        raise UserError(
            f"on a swarm, a restore goes into an instance that runs: commission {target} "
            f"first (girofle new-stack {target} --node NODE)"
        )
    source = inventory.instances.get(name)
    if not from_remote and (source is None or source.node != instance.node):
        raise UserError(
            f"the local backups of {name} are on its own node, not {target}'s: "
            "restore from the remote (--from remote)"
        )
    argv = ["restore", name, "--backup", backup_id, "--json"]
    argv += ["--as", target] if target != name else []
    argv += ["--force"] if force else []
    argv += ["--from", "remote"] if from_remote else []
    app.progress(f"{target}: restoring {name} {backup_id} on its node (a job there)")
    with app.home.lock(f"instance-{target}", wait=False):
        answer = json.loads(run_there(app.target, target, argv))
    # The restore's restart made a new task, which Traefik's swarm provider finds only at
    # its next poll of the manager: the restore is done once routed again.
    wait_routed(app, instance)
    return RestoreReport(
        answer["instance"],
        answer["backup"],
        answer["gitlab_version"],
        [ProjectEntry.model_validate(p) for p in answer["projects"]],
        answer["safety_backup"],
        answer["durations"],
    )


def _restore_locked(
    app: App, ref: BackupRef, manifest: Manifest, target: str, safety: str | None
) -> RestoreReport:
    container = app.target.container(target)
    instance = read_inventory(app.home).get(target)
    refuse_while_gitlab_backs_up(app, target, container, "restore")
    durations: dict[str, float] = {}

    def restart() -> str:
        app.target.restart(target)
        converge.wait_healthy(app, instance)
        return app.target.container(target)

    restore_into(app, ref, manifest, container, target, restart, durations)
    return RestoreReport(
        target,
        ref.backup_id,
        manifest.gitlab_version or "",
        api.projects(app, target),
        safety,
        durations,
    )


def restore_into(
    app: App,
    ref: BackupRef,
    manifest: Manifest,
    container: str,
    label: str,
    restart: Callable[[], str],
    durations: dict[str, float] | None = None,
) -> None:
    """GitLab's documented restore into a running ``container`` of the backup's version:
    secrets and gitlab.rb first, reconfigure, puma and sidekiq stopped, `gitlab-backup
    restore`, a restart (``restart`` restarts, waits until healthy and names the container
    that then runs GitLab), then gitlab:doctor:secrets, whose failures fail the restore.
    GitLab's parts are timed into ``durations`` (restore.<part>)."""
    parts = durations if durations is not None else {}
    app.progress(f"{label}: putting back its secrets, gitlab.rb and SSH host keys")
    _put_back_config(app, ref, container)
    archive_name = f"{manifest.gitlab_backup_id}{GITLAB_ARCHIVE_SUFFIX}"
    staged = f"{GITLAB_BACKUPS}/{archive_name}"
    with timed(parts, "restore.gitlab_ctl"):
        # A restart (one a killed run asked for, which the engine carries out without its
        # client) starts every service again, not just the one a step stops: wait out one
        # under way, and run the whole sequence again if one happened meanwhile.
        while True:
            _wait_out_restart(app, container)
            started = app.engine.started_at(container)
            maintenance(app, container, True)
            for step in (["reconfigure"], ["stop", "puma"], ["stop", "sidekiq"]):
                _exec_through_restart(app, container, ["gitlab-ctl", *step])
            _stage_archive(app, ref.path / "data" / archive_name, container, staged)
            if app.engine.started_at(container) == started and not app.engine.stopping(container):
                break
    try:
        app.progress(f"{label}: gitlab-backup restore BACKUP={manifest.gitlab_backup_id}")
        with timed(parts, "restore.gitlab_backup_restore"):
            app.engine.exec(
                container,
                ["gitlab-backup", "restore", f"BACKUP={manifest.gitlab_backup_id}"],
                env={"GITLAB_ASSUME_YES": "1"},
                timeout=app.config.backups.gitlab_backup_timeout,
            )
    except GirofleError:
        _start_again(app, label, container)
        raise
    finally:
        with contextlib.suppress(DockerError):
            app.engine.exec(container, ["rm", "-f", staged])
    app.progress(f"{label}: restarting (sshd reads the restored host keys at start)")
    maintenance(app, container, False)
    with timed(parts, "restore.restart"):
        container = restart()
    app.progress(f"{label}: gitlab-rake gitlab:doctor:secrets")
    try:
        with timed(parts, "restore.doctor_secrets"):
            output = app.engine.exec(
                container,
                ["gitlab-rake", "gitlab:doctor:secrets"],
                timeout=app.config.backups.doctor_timeout,
            )
    except DockerError as err:
        raise BackupError(
            f"{label} was restored from {ref.backup_id}, but gitlab:doctor:secrets did not "
            f"finish ({err}): whether the data decrypts is not known"
        ) from None
    failures = doctor_failures(output)
    if failures:
        raise BackupError(
            f"{label} was restored from {ref.backup_id}, but gitlab:doctor:secrets cannot "
            f"decrypt {', '.join(failures)}: the secrets do not match the data"
        )

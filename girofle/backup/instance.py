"""Instance backups: GitLab's own backup, its /etc/gitlab, its logs, and a manifest.

A backup is assembled in a hidden ``.partial-*`` directory beside its final place and
renamed once its manifest is written, so a crash never leaves one that looks complete.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import io
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from girofle import __version__
from girofle.backup.manifest import (
    MANIFEST,
    Manifest,
    ProjectEntry,
    describe_files,
    read_manifest,
    write_manifest,
)
from girofle.backup.probe import (
    GITLAB_ARCHIVE_SUFFIX,
    GITLAB_BACKUPS,
    Probe,
    Step,
    probe,
    probe_instance,
)
from girofle.backup.repos import (
    REPOSITORIES,
    STATE_FUNCTIONS,
    RepositoryState,
    disk_path,
    parse_states,
)
from girofle.errors import (
    BackupError,
    ConflictError,
    DockerError,
    EngineUnavailableError,
    GirofleError,
    UserError,
)
from girofle.inventory import Instance, editing, read_inventory
from girofle.lifecycle import converge, validate
from girofle.lifecycle.app import App
from girofle.render import model
from girofle.render.model import MAINTENANCE_FLAG, InstancePaths
from girofle.targets.on_node import delegated, run_there
from girofle.timing import timed

if TYPE_CHECKING:
    from girofle.backup.remote import PushReport

BACKUP_ID = re.compile(r"^\d{8}T\d{6}Z$")
PARTIAL_PREFIX = ".partial-"
DATA_VOLUME = "/var/opt/gitlab"  # the instance's data volume, in its container
# Where, inside the data volume, backup-etc writes before its archive is streamed out.
ETC_STAGING = f"{DATA_VOLUME}/girofle-etc-backup"
# Where, inside the data volume, GitLab's archive is handed to Girofle: a directory of
# Girofle's (its uid and gid), from which Girofle on the host renames it into the backup.
HANDOVER_DIRECTORY = "girofle-handover"
HANDOVER = f"{DATA_VOLUME}/{HANDOVER_DIRECTORY}"
# $1 the staging directory, $2 GitLab's backup directory, $3 the handover. The staging
# directory and every archive of GitLab's go (this run's, taken already; any a killed run
# left: Girofle takes every archive of a complete backup), then backup-etc writes into $1
# (its own output to stderr), whose tar is the exec's stdout.
ETC_SCRIPT = (
    'rm -rf -- "$1" && rm -f -- "$2"/*_gitlab_backup.tar "$3"/*_gitlab_backup.tar'
    ' && gitlab-ctl backup-etc --no-delete-old-backups -p "$1" >&2'
    ' && tar -C "$1" -cf - . && rm -rf -- "$1"'
)
# $1 the repositories, $2 the line that separates their states from GitLab's output, $3
# the archive GitLab will write, $4 the handover, $5 Girofle's uid:gid; the rest is
# gitlab-backup's command. The refs first (`refs NANOSECONDS`: how long they took), then
# GitLab's backup, then its archive renamed into the handover (the same volume: nothing is
# copied) and given to Girofle (`handed NANOSECONDS`).
REFS_THEN_GITLAB_BACKUP = (
    STATE_FUNCTIONS
    + r"""
repositories=$1; follows=$2; archive=$3; handover=$4; owner=$5; shift 5
started=$(date +%s%N)
mode=heads
project_states "$repositories"
printf 'refs %s\n%s\n' "$(( $(date +%s%N) - started ))" "$follows"
"$@" || exit
started=$(date +%s%N)
mkdir -p -- "$handover" && chown -- "$owner" "$handover" && chmod 0700 -- "$handover" \
  && mv -f -- "$archive" "$handover/" && chown -- "$owner" "$handover/${archive##*/}" || exit
printf '\nhanded %s\n' "$(( $(date +%s%N) - started ))"
"""
)
GITLAB_OUTPUT_FOLLOWS = "-- girofle: gitlab-backup's output follows --"
GITLAB_BACKUP_LOG = "gitlab-backup.log"
SECRETS_FILE = "gitlab-secrets.json"
CONFIG_ARCHIVES = "gitlab_config_*.tar"  # what gitlab-ctl backup-etc writes
CHUNK_IN_MEMORY = 8 << 20  # a log copy larger than this goes to a temporary file


@dataclass(frozen=True)
class BackupRef:
    """A complete local backup of an instance (and what the remote took of it, if pushed)."""

    instance: str
    backup_id: str
    path: Path
    manifest: Manifest
    pushed: PushReport | None = None


def backups_dir(app: App, name: str) -> Path:
    return InstancePaths.of(app.config.data_root, name).backups


def new_backup_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def list_backups(app: App, name: str) -> list[BackupRef]:
    """Complete backups of an instance, oldest first (partial ones are not backups)."""
    directory = backups_dir(app, name)
    if not directory.is_dir():
        return []
    refs = []
    for path in sorted(directory.iterdir()):
        if BACKUP_ID.match(path.name) and (path / MANIFEST).is_file():
            refs.append(BackupRef(name, path.name, path, read_manifest(path)))
    return refs


def local_backups(app: App, name: str) -> list[dict[str, Any]]:
    """What `girofle backups NAME --json` lists: each complete backup, oldest first, read
    where it is (on a swarm, by Girofle on the instance's node)."""
    if delegated(app.config):
        instance = read_inventory(app.home).instances.get(name)
        if instance is None or instance.node is None:
            return []
        listed: list[dict[str, Any]] = json.loads(
            run_there(app.target, name, ["backups", name, "--json"])
        )
        return listed
    return [
        {
            "instance": r.instance,
            "backup": r.backup_id,
            "path": str(r.path),
            "gitlab_version": r.manifest.gitlab_version,
            "size": sum(f.size for f in r.manifest.files),
            "projects": [p.path for p in r.manifest.projects],
        }
        for r in list_backups(app, name)
    ]


def find_backup(app: App, name: str, backup_id: str) -> BackupRef:
    """A backup by id, or the newest for ``latest``."""
    refs = list_backups(app, name)
    if not refs:
        raise UserError(f"instance {name!r} has no local backup")
    if backup_id == "latest":
        return refs[-1]
    for ref in refs:
        if ref.backup_id == backup_id:
            return ref
    raise UserError(f"no backup {backup_id!r} of {name!r} (see `girofle backups {name}`)")


def _remove_stale_partials(directory: Path) -> None:
    """Partial backups left by a killed run: they never had a manifest, so remove them."""
    for path in directory.glob(f"{PARTIAL_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


def running_gitlab_backup(app: App, container: str) -> dt.datetime | None:
    """When the backup or restore GitLab is running in ``container`` started, or None.

    GitLab's own lock is a pid file (lib/tasks/gitlab/backup.rb, lock_backup); a process
    started by `docker exec` outlives a client that was killed, so after Girofle died or
    gave up, GitLab may still be writing.
    """
    return _busy_since(app, container, probe(app, container, ["lock"]))


def _busy_since(app: App, container: str, found: Probe) -> dt.datetime | None:
    """When the backup or restore the probe found running started, or None."""
    if found.busy is None:
        return None
    written = dt.datetime.fromtimestamp(found.busy, dt.UTC)
    # A file from before the container's last start is stale, even when a process of the
    # new boot happens to have the same pid (pids start over in each container).
    booted = app.engine.started_at(container)
    if booted is not None and written < dt.datetime.fromisoformat(booted).replace(microsecond=0):
        return None
    return written


def refuse_while_gitlab_backs_up(app: App, name: str, container: str, doing: str) -> None:
    started = running_gitlab_backup(app, container)
    if started is not None:
        raise _busy(name, started, doing)


def _busy(name: str, started: dt.datetime, doing: str) -> ConflictError:
    return ConflictError(
        f"a backup of {name} is still running in its container since "
        f"{started:%H:%M} UTC: {doing} once it ends"
    )


@dataclass(frozen=True)
class GitLabBackup:
    """What the exec of gitlab-backup gave: GitLab's output, the repositories' refs read
    just before it started, and its archive's name in the handover."""

    output: str
    refs_before: dict[str, RepositoryState]
    archive: str


def _gitlab_backup(
    app: App, name: str, container: str, backup_id: str, durations: dict[str, float]
) -> GitLabBackup:
    """Read every project repository's refs, run gitlab-backup create, naming its archive
    after Girofle's backup, and hand the archive to Girofle, in one exec (GitLab's needs one
    anyway; the seconds of Girofle's parts, measured in it, are the manifest's `before` and
    part of `archive_moves`). GitLab's own lock refuses a second backup or restore: a
    ConflictError, exit 3, while one runs."""
    # STRATEGY=copy avoids "file changed as we read it" on a live instance (reference §5.1);
    # GZIP_RSYNCABLE=yes makes gzip restart its blocks on content boundaries, so that the
    # next backup's archive shares chunks with this one in the remote's restic repository;
    # BACKUP= names the archive <BACKUP>_gitlab_backup.tar, so Girofle need not look for it
    # (GitLab's doc/administration/backup_restore/backup_gitlab.md, "Backup filename").
    # Without CRON=1, which would also hide the lock's "Backup and restore in progress".
    archive = f"{backup_id}{GITLAB_ARCHIVE_SUFFIX}"
    owner = f"{os.getuid()}:{os.getgid()}"
    argv = ["sh", "-c", REFS_THEN_GITLAB_BACKUP, "sh", REPOSITORIES, GITLAB_OUTPUT_FOLLOWS]
    argv += [f"{GITLAB_BACKUPS}/{archive}", HANDOVER, owner]
    argv += ["gitlab-backup", "create", "STRATEGY=copy", "GZIP_RSYNCABLE=yes"]
    argv += [f"BACKUP={backup_id}"]
    started = time.monotonic()
    try:
        out = app.engine.exec(container, argv, timeout=app.config.backups.gitlab_backup_timeout)
    except DockerError:
        running = running_gitlab_backup(app, container)
        if running is not None:
            raise _busy(name, running, "run the backup again") from None
        raise
    seconds = time.monotonic() - started
    head, _, output = out.partition(GITLAB_OUTPUT_FOLLOWS + "\n")
    output, _, handed = output.rstrip("\n").rpartition("\n")
    lines = head.splitlines()
    # The script's `refs NANOSECONDS` and `handed NANOSECONDS`.
    refs_seconds = int(lines.pop().split()[1]) / 1e9
    handed_seconds = int(handed.split()[1]) / 1e9
    durations["before"] = round(refs_seconds, 3)
    durations["gitlab_backup"] = round(seconds - refs_seconds - handed_seconds, 3)
    durations["archive_moves"] = round(handed_seconds, 3)
    return GitLabBackup(output.rstrip("\n") + "\n", parse_states(lines), archive)


def _take_archive(
    app: App, container: str, paths: InstancePaths, archive: str, destination: Path
) -> None:
    """Rename the handed archive from the data volume into the backup (the same filesystem,
    most often: nothing is copied); from another filesystem, or where the host does not see
    the container's owners as they are (user namespaces), copy it through the engine."""
    handed = paths.data / HANDOVER_DIRECTORY / archive
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        handed.rename(destination)
    except OSError:
        _copy_out(app, container, f"{HANDOVER}/{archive}", destination)


def _copy_out(app: App, container: str, source: str, destination: Path) -> None:
    """Copy an archive GitLab wrote out of the container's volume, through the engine (so
    Girofle needs no right on GitLab's files on the host).

    backup-etc's exec deletes it afterwards (an exec costs more than the deletion); when
    the copy fails (a full backup disk), it is deleted at once rather than left to fill the
    data volume.
    """
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        app.engine.copy_out(container, source, destination)
    except (DockerError, OSError):
        with contextlib.suppress(DockerError):
            app.engine.exec(container, ["rm", "-rf", "--", source])
        raise


def _config_backup(app: App, container: str, target: Path, durations: dict[str, float]) -> None:
    """gitlab-ctl backup-etc into a fresh directory of the data volume, whose archive the
    same exec streams out (a tar of a few kilobytes on stdout) before deleting the
    directory; GitLab's archives, copied out already, are deleted first."""
    with timed(durations, "backup_etc"):
        stream = app.engine.exec_bytes(
            container, ["sh", "-c", ETC_SCRIPT, "sh", ETC_STAGING, GITLAB_BACKUPS, HANDOVER]
        )
    with timed(durations, "archive_moves"):
        config_archive = _unpack_config_archive(stream, target)
        require_secrets(config_archive)


def _unpack_config_archive(stream: bytes, target: Path) -> Path:
    """The one archive backup-etc wrote (gitlab_config_*.tar), out of the exec's tar
    stream into ``target``, 0600."""
    try:
        with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
            found = [
                member
                for member in tar.getmembers()
                if member.isfile() and fnmatch.fnmatch(Path(member.name).name, CONFIG_ARCHIVES)
            ]
            if len(found) != 1:
                raise BackupError(f"gitlab-ctl backup-etc left {len(found)} archives, not one")
            source = tar.extractfile(found[0])
            assert source is not None  # a regular file
            target.mkdir(parents=True, exist_ok=True)
            written = target / Path(found[0].name).name
            with source, written.open("wb") as out:
                shutil.copyfileobj(source, out)
            written.chmod(0o600)
            return written
    except tarfile.TarError as err:
        raise BackupError(f"gitlab-ctl backup-etc's archive could not be read: {err}") from None


def require_secrets(config_archive: Path) -> None:
    """Refuse a config archive without gitlab-secrets.json: without it, a restored database
    cannot be decrypted (GitLab's restore documentation, "restore the secrets first")."""
    try:
        with tarfile.open(config_archive) as tar:
            names = {Path(member.name).name for member in tar.getmembers() if member.isfile()}
    except (OSError, tarfile.TarError) as err:
        raise BackupError(f"{config_archive.name} cannot be read: {err}") from None
    if SECRETS_FILE not in names:
        raise BackupError(
            f"{config_archive.name} holds no {SECRETS_FILE}: a restore from it could not "
            "decrypt the database"
        )


def _log_backup(paths: InstancePaths, target: Path) -> int:
    """The instance's logs, as they are at this moment; return how many could not be read.

    Logs rotate while they are read (svlogd renames and deletes segments, logrotate
    truncates): each file is copied first, at the size it has then, and one that vanished
    is left out, so a rotation never fails the backup. GitLab's services keep some logs to
    themselves (mode 0600): Girofle run as its own user leaves those out, and says so.
    """
    unreadable = 0
    target.mkdir(parents=True)
    with tarfile.open(target / "logs.tar.gz", "w:gz") as tar:
        tar.add(paths.log, arcname="log", recursive=False)
        for directory, subdirs, files in os.walk(paths.log):
            subdirs.sort()
            relative = Path("log") / Path(directory).relative_to(paths.log)
            for sub in subdirs:
                with contextlib.suppress(FileNotFoundError):
                    tar.add(Path(directory) / sub, arcname=str(relative / sub), recursive=False)
            for filename in sorted(files):
                try:
                    _add_snapshot(tar, Path(directory) / filename, str(relative / filename))
                except PermissionError:
                    unreadable += 1
    return unreadable


def _add_snapshot(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    """Add a copy of ``path`` as it is now; nothing if it vanished or is not a regular
    file (a socket or FIFO would block the open)."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return
        handle = path.open("rb")
    except (FileNotFoundError, IsADirectoryError):
        return
    with handle, tempfile.SpooledTemporaryFile(max_size=CHUNK_IN_MEMORY) as copy:
        info = tar.gettarinfo(fileobj=handle, arcname=arcname)
        shutil.copyfileobj(handle, copy)
        info.size = copy.tell()
        copy.seek(0)
        tar.addfile(info, copy)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_instance(app: App, name: str, remote: bool = False, quiesced: bool = False) -> BackupRef:
    """Back up a running instance into <data_root>/noeud-gitlab-<name>/bckups/<id>/, and
    push it to the remote when asked; the outcome is recorded for `girofle ls`.

    ``quiesced``: puma and sidekiq are stopped for the backup and stay stopped, so that
    nothing is written after it (what a move takes before the instance goes elsewhere).
    """
    instance = read_inventory(app.home).get(validate.instance_name(name))
    if instance.state == "decommissioned":
        raise UserError(f"instance {name!r} is decommissioned: there is nothing running to back up")
    try:
        ref = _backup_and_push(app, instance, remote, quiesced)
    except EngineUnavailableError as err:  # no engine from the start: exit 4, as everywhere
        _record_result(app, name, f"failed: {err}")
        raise
    except DockerError as err:
        # The engine failed in the middle (the container was killed, an exec broke): that
        # is a failed backup, exit 6, like every other.
        raise _failed(app, name, str(err)) from None
    except GirofleError as err:
        _record_result(app, name, f"failed: {err}")
        raise
    except OSError as err:  # a full disk, most often: say so in one line
        raise _failed(app, name, err.strerror or str(err)) from None
    _record_result(app, name, "ok")
    return ref


def _failed(app: App, name: str, reason: str) -> BackupError:
    """The one-line BackupError for a backup that failed for ``reason``, recorded."""
    failure = BackupError(f"{name}: backup failed: {reason}")
    _record_result(app, name, f"failed: {failure}")
    return failure


def _record_result(app: App, name: str, result: str) -> None:
    try:
        with editing(app.home) as inventory:
            inventory.instances[name].last_backup_result = result
    except OSError:
        pass  # the disk is full: the inventory stays as it was (it is replaced atomically)


def _backup_and_push(app: App, instance: Instance, remote: bool, quiesced: bool) -> BackupRef:
    name = instance.name
    app.engine.ping()
    if delegated(app.config):  # the node's Girofle pushes, with its own restic
        with app.home.lock(f"instance-{name}", wait=False):
            return _backup_on_node(app, instance, remote, quiesced)
    restic = None
    if remote:
        from girofle.backup.remote import restic_for

        restic = restic_for(app.config.remote, app.home.root, app.config.tools)
    with app.home.lock(f"instance-{name}", wait=False):
        ref = _backup_locked(app, instance, quiesced)
    if restic is not None:
        from girofle.backup.remote import instance_path

        app.progress(f"{name}: pushing {ref.backup_id} to {restic.remote.repository}")
        tags = {"kind": "instance", "instance": name, "backup": ref.backup_id}
        try:
            pushed = restic.push(ref.path, instance_path(name), tags)
        except BackupError as err:
            raise BackupError(
                f"{name}: backup {ref.backup_id} is complete locally, but {err}"
            ) from None
        ref = replace(ref, pushed=pushed)
    return ref


def _backup_on_node(app: App, instance: Instance, remote: bool, quiesced: bool) -> BackupRef:
    """The backup taken (and pushed) by Girofle on the instance's swarm node, where its
    data is; the backup stays in that node's instance directory."""
    from girofle.backup.remote import PushReport

    name = instance.name
    app.progress(f"{name}: backing up on its node (a job there){' and pushing' * remote}")
    argv = ["backup", "create", name, "--json"]
    argv += ["--remote"] if remote else []
    argv += ["--quiesced"] if quiesced else []
    answer = json.loads(run_there(app.target, name, argv))
    manifest = Manifest.model_validate(answer["manifest"])
    with editing(app.home) as inventory:
        inventory.instances[name].last_backup = manifest.created_at
    pushed = answer["remote"]
    return BackupRef(
        name,
        answer["backup"],
        Path(answer["path"]),
        manifest,
        None
        if pushed is None
        else PushReport(
            pushed["snapshot"],
            pushed["data_added"],
            pushed["bytes_processed"],
            pushed.get("seconds", 0.0),
        ),
    )


def _backup_locked(app: App, instance: Instance, quiesced: bool = False) -> BackupRef:
    name = instance.name
    paths = InstancePaths.of(app.config.data_root, name)
    container = app.target.container(name)
    directory = paths.backups
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(directory)
    backup_id = new_backup_id()
    while (directory / backup_id).exists():  # two backups within one second
        time.sleep(1)
        backup_id = new_backup_id()
    # Each step's seconds, in the manifest: GitLab's (gitlab_backup, backup_etc and, for a
    # move, the services' stop and start) and Girofle's own (the rest).
    durations: dict[str, float] = {}
    read_before = None
    if quiesced:  # a move: the API goes down with puma, so it is read first
        with timed(durations, "services"):  # a rerun after a kill finds them stopped
            start_services(app, name, container)
        with timed(durations, "reads"):
            read_before = probe_instance(app, name, container, ["reads"]).reading
    partial = directory / f"{PARTIAL_PREFIX}{backup_id}"
    partial.mkdir(mode=0o700)
    try:
        if quiesced:
            app.progress(f"{name}: stopping puma and sidekiq: nothing is written after this")
            with timed(durations, "services"):
                quiesce(app, container)
        app.progress(f"{name}: gitlab-backup create (STRATEGY=copy)")
        gitlab = _gitlab_backup(app, name, container, backup_id, durations)
        # The refs again and, unless quiesced (the API is down, and nothing changed since it
        # answered), the API's reading: they wait on the container, not on Girofle, so
        # they run beside the copies and backup-etc; "after" is the wait they add.
        with ThreadPoolExecutor(max_workers=1) as beside:
            steps: list[Step] = ["refs"] if quiesced else ["refs", "reads"]
            reading_after = beside.submit(probe_instance, app, name, container, steps)
            with timed(durations, "archive_moves"):
                data = partial / "data"
                _take_archive(app, container, paths, gitlab.archive, data / gitlab.archive)
                (data / GITLAB_BACKUP_LOG).write_text(gitlab.output)
            app.progress(f"{name}: gitlab-ctl backup-etc")
            _config_backup(app, container, partial / "config", durations)
            with timed(durations, "logs"):
                unreadable = _log_backup(paths, partial / "log")
            with timed(durations, "after"):
                after = reading_after.result()
        if unreadable:
            app.progress(f"{name}: {unreadable} log file(s) GitLab keeps to itself left out")
        reading = read_before if quiesced else after.reading
        assert reading is not None
        projects = _with_refs(reading.projects, gitlab.refs_before, after.repositories)
        with timed(durations, "checksums"):
            files = describe_files(partial)
        manifest = Manifest(
            kind="instance",
            instance=name,
            created_at=dt.datetime.strptime(backup_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC),
            girofle_version=__version__,
            image=instance.image,
            gitlab_version=reading.version,
            gitlab_backup_id=backup_id,
            projects=projects,
            web_projects=list(instance.projects),
            hostnames=model.instance_hostnames(app.config, instance),
            durations=durations,
            files=files,
        )
        write_manifest(partial, manifest)
        _fsync_dir(partial)
        final = directory / backup_id
        partial.rename(final)  # the backup exists, complete, or not at all
        _fsync_dir(directory)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        if quiesced:  # the instance stays where it is: it serves again
            with contextlib.suppress(GirofleError):
                start_services(app, name, container)
        raise
    with editing(app.home) as inventory:
        inventory.instances[name].last_backup = manifest.created_at
    apply_retention(app, name)
    app.progress(f"{name}: backup {backup_id} complete")
    return BackupRef(name, backup_id, final, manifest)


def maintenance(app: App, container: str, on: bool) -> None:
    """Raise or lower the maintenance flag the instance's healthcheck honours on a swarm
    (GitLab's services are stopped meanwhile, and Swarm kills a task that turns unhealthy)."""
    argv = ["touch", MAINTENANCE_FLAG] if on else ["rm", "-f", MAINTENANCE_FLAG]
    app.engine.exec(container, argv)


def quiesce(app: App, container: str) -> None:
    """Stop puma and sidekiq (nothing is written without them), under the maintenance
    flag, so that Swarm does not kill the task whose healthcheck now fails."""
    maintenance(app, container, True)
    for service in ("puma", "sidekiq"):
        app.engine.exec(container, ["gitlab-ctl", "stop", service])


def start_services(app: App, name: str, container: str) -> None:
    """Start puma and sidekiq (a no-op when they run), lower the maintenance flag, and
    wait until GitLab is ready."""
    for service in ("puma", "sidekiq"):
        app.engine.exec(container, ["gitlab-ctl", "start", service])
    maintenance(app, container, False)
    converge.wait_ready(app, read_inventory(app.home).get(name))


def _with_refs(
    projects: list[ProjectEntry],
    before: dict[str, RepositoryState],
    after: dict[str, RepositoryState],
) -> list[ProjectEntry]:
    """Projects with the refs and commit counts GitLab's backup holds: those that were the
    same before and after it ran (a push in between leaves them unrecorded)."""
    recorded = []
    for project in projects:
        path = disk_path(project.id) if project.id is not None else ""
        state, earlier = after.get(path), before.get(path)
        # Before, only the refs were read: equal refs reach equal commits.
        if state is None or state.missing or earlier is None or earlier.refs != state.refs:
            recorded.append(project)
            continue
        recorded.append(project.model_copy(update={"refs": state.refs, "commits": state.commits}))
    return recorded


def apply_retention(app: App, name: str) -> list[str]:
    """Delete local backups beyond girofle.yml's keep_last / keep_days; return their ids."""
    settings = app.config.backups.policy(name)
    refs = list_backups(app, name)
    keep = {r.backup_id for r in refs}
    if settings.keep_last is not None:
        keep &= {r.backup_id for r in refs[-settings.keep_last :]}
    if settings.keep_days is not None:
        limit = dt.datetime.now(dt.UTC) - dt.timedelta(days=settings.keep_days)
        keep &= {r.backup_id for r in refs if r.manifest.created_at >= limit}
    if refs:
        keep.add(refs[-1].backup_id)  # never delete the newest
    # Nor what a restore under way needs: the backup it restores (the safety backup it
    # takes first would otherwise push it out), and that safety backup.
    inventory = read_inventory(app.home)
    for target, restore in inventory.restores.items():
        if restore.source == name:
            keep.add(restore.backup_id)
        if target == name and restore.safety_backup:
            keep.add(restore.safety_backup)
    # Nor the backups an upgrade took before each hop: its way back.
    if name in inventory.upgrades:
        keep.update(inventory.upgrades[name].backups)
    removed = [r.backup_id for r in refs if r.backup_id not in keep]
    for backup_id in removed:
        shutil.rmtree(backups_dir(app, name) / backup_id)
    return removed

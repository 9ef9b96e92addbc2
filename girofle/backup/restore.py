"""Restoring an instance from a backup, in the order GitLab documents (reference §6).

Checksums first (a damaged backup is refused before anything changes), then an instance
on the backup's exact GitLab version, its secrets and gitlab.rb, reconfigure, puma and
sidekiq stopped, `gitlab-backup restore`, a restart, and `gitlab:doctor:secrets`.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from girofle.backup import api
from girofle.backup.instance import (
    CONFIG_ARCHIVES,
    GITLAB_ARCHIVE_SUFFIX,
    SECRETS_FILE,
    BackupRef,
    backup_instance,
    find_backup,
    refuse_while_gitlab_backs_up,
    require_secrets,
)
from girofle.backup.manifest import Manifest, ProjectEntry, verify
from girofle.errors import BackupError, DockerError, UserError
from girofle.home import atomic_write
from girofle.inventory import editing, read_inventory
from girofle.lifecycle import instances, validate
from girofle.lifecycle.app import App
from girofle.render import model
from girofle.render.model import InstancePaths

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


def _running_version(app: App, name: str) -> str:
    return app.engine.gitlab_version(model.container_name(name))


def _prepare_target(app: App, target: str, manifest: Manifest, force: bool) -> str | None:
    """An instance named ``target`` running the backup's version; return a safety backup id."""
    existing = read_inventory(app.home).instances.get(target)
    if existing is not None and app.engine.container(model.container_name(target)) is None:
        existing = existing.model_copy(update={"state": "decommissioned"})  # e.g. a new host
    if existing is not None and existing.state != "decommissioned":
        if not force:
            raise UserError(
                f"instance {target!r} exists: restoring over it needs --force "
                "(Girofle takes a safety backup of it first)"
            )
        running = _running_version(app, target)
        if running != manifest.gitlab_version:
            raise BackupError(
                f"the backup is of GitLab {manifest.gitlab_version}, {target} runs {running}: "
                "GitLab restores only onto the exact same version"
            )
        app.progress(f"{target}: taking a safety backup before restoring over it")
        return backup_instance(app, target).backup_id
    if existing is not None:  # decommissioned: its pairs are free again; commission anew
        with editing(app.home) as inventory:
            del inventory.instances[target]
    projects = tuple(manifest.web_projects)
    app.progress(f"{target}: commissioning it on {manifest.image}")
    assert manifest.image is not None
    instances.new_stack(
        app, instances.NewStackRequest(name=target, projects=projects, image=manifest.image)
    )
    running = _running_version(app, target)
    if running != manifest.gitlab_version:
        raise BackupError(
            f"the backup is of GitLab {manifest.gitlab_version}, "
            f"but {manifest.image} runs {running}"
        )
    return None


def _config_archive(ref: BackupRef) -> Path:
    archives = sorted((ref.path / "config").glob(CONFIG_ARCHIVES))
    if len(archives) != 1:
        raise BackupError(f"backup {ref.backup_id} has {len(archives)} config archives, not one")
    return archives[0]


def _wanted(relative: PurePosixPath) -> bool:
    return str(relative) in CONFIG_FILES or any(relative.match(p) for p in CONFIG_PATTERNS)


def _put_back_config(ref: BackupRef, paths: InstancePaths) -> list[str]:
    """Secrets, gitlab.rb, SSH host keys and trusted-certs/ from the backup-etc archive into
    /etc/gitlab; return what was put back. Members are named /etc/gitlab/... (backup-etc's
    tar --absolute-names); only regular files directly matching are written, 0600 (0644
    for public keys and certificates), never outside the config directory."""
    restored = []
    with tarfile.open(_config_archive(ref)) as tar:
        for member in tar.getmembers():
            try:
                relative = PurePosixPath(member.name).relative_to("/etc/gitlab")
            except ValueError:
                continue
            if not member.isfile() or ".." in relative.parts or not _wanted(relative):
                continue
            source = tar.extractfile(member)
            assert source is not None
            target = paths.config.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            public = (
                relative.suffix in (".pub", ".crt", ".pem") or relative.parts[0] == "trusted-certs"
            )
            atomic_write(target, source.read(), 0o644 if public else 0o600)
            restored.append(str(relative))
    return restored


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


def fetch_remote_backup(app: App, name: str, backup_id: str) -> str:
    """Bring an instance backup from the remote into its local bckups/; return its id."""
    from girofle.backup.instance import backups_dir
    from girofle.backup.remote import fetch_into, instance_path, pick, restic_for

    restic = restic_for(app.config.remote, app.home.root, app.config.tools)
    snapshot = pick(restic.snapshots({"kind": "instance", "instance": name}), backup_id, name)
    chosen = snapshot.tags["backup"]
    app.progress(f"{name}: fetching {chosen} from {restic.remote.repository}")
    directory = backups_dir(app, name)
    directory.mkdir(parents=True, exist_ok=True)
    fetch_into(restic, snapshot, instance_path(name, chosen), directory / chosen)
    return chosen


def restore_instance(
    app: App,
    name: str,
    backup_id: str = "latest",
    as_name: str | None = None,
    force: bool = False,
    from_remote: bool = False,
) -> RestoreReport:
    """Restore backup ``backup_id`` of ``name`` onto ``as_name`` (default: ``name``)."""
    validate.instance_name(name)
    if from_remote:
        backup_id = fetch_remote_backup(app, name, backup_id)
    ref = find_backup(app, name, backup_id)
    target = validate.instance_name(as_name or name)
    app.progress(f"{name}: checking backup {ref.backup_id} against its manifest")
    manifest = verify(ref.path)
    require_secrets(_config_archive(ref))
    app.engine.ping()
    safety = _prepare_target(app, target, manifest, force)
    with app.home.lock(f"instance-{target}", wait=False):
        return _restore_locked(app, ref, manifest, target, safety)


def _restore_locked(
    app: App, ref: BackupRef, manifest: Manifest, target: str, safety: str | None
) -> RestoreReport:
    paths = InstancePaths.of(app.config.data_root, target)
    container = model.container_name(target)
    instance = read_inventory(app.home).get(target)
    refuse_while_gitlab_backs_up(app, target, container, "restore")
    app.progress(f"{target}: putting back its secrets, gitlab.rb and SSH host keys")
    _put_back_config(ref, paths)
    app.engine.exec(container, ["gitlab-ctl", "reconfigure"])
    app.engine.exec(container, ["gitlab-ctl", "stop", "puma"])
    app.engine.exec(container, ["gitlab-ctl", "stop", "sidekiq"])
    archive_name = f"{manifest.gitlab_backup_id}{GITLAB_ARCHIVE_SUFFIX}"
    staged = paths.data / "backups" / archive_name
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ref.path / "data" / archive_name, staged)
    os.chown(staged, GIT_UID, GIT_UID)  # restore runs as git and must read it (reference §6.1)
    staged.chmod(0o600)
    try:
        app.progress(f"{target}: gitlab-backup restore BACKUP={manifest.gitlab_backup_id}")
        app.engine.exec(
            container,
            ["gitlab-backup", "restore", f"BACKUP={manifest.gitlab_backup_id}"],
            env={"GITLAB_ASSUME_YES": "1"},
            timeout=app.config.backups.gitlab_backup_timeout,
        )
    finally:
        staged.unlink(missing_ok=True)
    app.progress(f"{target}: restarting (sshd reads the restored host keys at start)")
    restarted = app.engine.container(container)
    assert restarted is not None
    app.engine.restart(restarted, app.config.gitlab.stop_grace_period)
    instances.wait_healthy(app, instance)
    app.progress(f"{target}: gitlab-rake gitlab:doctor:secrets")
    try:
        output = app.engine.exec(
            container,
            ["gitlab-rake", "gitlab:doctor:secrets"],
            timeout=app.config.backups.doctor_timeout,
        )
    except DockerError as err:
        raise BackupError(
            f"{target} was restored from {ref.backup_id}, but gitlab:doctor:secrets did not "
            f"finish ({err}): whether the data decrypts is not known"
        ) from None
    failures = doctor_failures(output)
    if failures:
        raise BackupError(
            f"{target} was restored from {ref.backup_id}, but gitlab:doctor:secrets cannot "
            f"decrypt {', '.join(failures)}: the secrets do not match the data"
        )
    return RestoreReport(
        target, ref.backup_id, manifest.gitlab_version or "", api.projects(app, target), safety
    )

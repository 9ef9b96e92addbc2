"""Girofle's own backup: girofle.yml, the inventory, rendered stacks and secrets.

With it, a new host gets the home back (`girofle restore --girofle`), after which
`girofle restore NAME` brings each instance back.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tarfile
from pathlib import Path

from girofle import __version__
from girofle.backup.instance import BACKUP_ID, PARTIAL_PREFIX, new_backup_id
from girofle.backup.manifest import MANIFEST, Manifest, describe_files, verify, write_manifest
from girofle.config import dump_config, load_config
from girofle.errors import BackupError, UserError
from girofle.home import atomic_write
from girofle.lifecycle.app import App

ARCHIVE = "girofle-home.tar.gz"
# What makes a home: everything else under it (data, locks) is not Girofle's state.
HOME_PARTS = ("girofle.yml", "inventory.json", "stacks", "secrets")


def sauvegardes(data_root: Path) -> Path:
    return data_root / "sauvegardes"


def backup_home(app: App, remote: bool = False) -> str:
    """Write <data_root>/sauvegardes/<id>/ with the home's archive (0600) and a manifest,
    and push it to the remote when asked."""
    restic = None
    if remote:
        from girofle.backup.remote import restic_for

        restic = restic_for(app.config.remote, app.home.root, app.config.tools)
    backup_id = _backup_home_locally(app)
    if restic is not None:
        from girofle.backup.remote import home_path

        app.progress(f"girofle: pushing {backup_id} to {restic.remote.repository}")
        tags = {"kind": "girofle", "backup": backup_id}
        try:
            restic.push(sauvegardes(app.config.data_root) / backup_id, home_path(), tags)
        except BackupError as err:
            raise BackupError(
                f"girofle backup {backup_id} is complete locally, but {err}"
            ) from None
    return backup_id


def _backup_home_locally(app: App) -> str:
    """The local half of backup_home: assembled in a partial directory, renamed when complete."""
    root = sauvegardes(app.config.data_root)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    backup_id = new_backup_id()
    partial = root / f"{PARTIAL_PREFIX}{backup_id}"
    partial.mkdir(mode=0o700)
    try:
        archive = partial / ARCHIVE
        with app.home.lock("inventory"), tarfile.open(archive, "w:gz") as tar:
            for part in HOME_PARTS:
                if (app.home.root / part).exists():
                    tar.add(app.home.root / part, arcname=part)
        archive.chmod(0o600)  # it holds the secrets
        write_manifest(
            partial,
            Manifest(
                kind="girofle",
                created_at=dt.datetime.strptime(backup_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC),
                girofle_version=__version__,
                files=describe_files(partial),
            ),
        )
        partial.rename(root / backup_id)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return backup_id


def list_home_backups(data_root: Path) -> list[str]:
    root = sauvegardes(data_root)
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if BACKUP_ID.match(p.name) and (p / MANIFEST).is_file()
    )


def restore_home(app: App, data_root: Path, backup_id: str = "latest") -> str:
    """Rebuild an empty home from a backup under ``data_root``/sauvegardes."""
    if app.home.config_file.exists():
        raise UserError(f"{app.home.root} already holds a Girofle home: restore into an empty one")
    ids = list_home_backups(data_root)
    if not ids:
        raise UserError(f"no Girofle backup under {sauvegardes(data_root)}")
    chosen = ids[-1] if backup_id == "latest" else backup_id
    if chosen not in ids:
        raise UserError(f"no Girofle backup {backup_id!r} under {sauvegardes(data_root)}")
    directory = sauvegardes(data_root) / chosen
    verify(directory)
    app.home.root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(directory / ARCHIVE) as tar:
        members = tar.getmembers()
        for member in members:
            top = Path(member.name).parts[0]
            if (
                top not in HOME_PARTS
                or member.issym()
                or member.islnk()
                or ".." in Path(member.name).parts
            ):
                raise BackupError(f"{directory / ARCHIVE} holds an unexpected entry: {member.name}")
        tar.extractall(app.home.root, members=members, filter="data")
        # The "data" filter leaves directories at the umask's mode: put back theirs (never
        # more open than 0755), so that secrets/<scope>/ come back 0700.
        for member in members:
            if member.isdir():
                (app.home.root / member.name).chmod(member.mode & 0o755)
    (app.home.root / "secrets").chmod(0o700)
    _move_data_root(app, data_root)
    return chosen


def _move_data_root(app: App, data_root: Path) -> None:
    """The home now lives where its backup was found: girofle.yml's data_root says so, or
    instances would come back under the old host's path."""
    config = load_config(app.home.config_file)
    wanted = data_root.resolve()
    if config.data_root != wanted:
        app.progress(f"girofle.yml: data_root {config.data_root} -> {wanted}")
        updated = config.model_copy(update={"data_root": wanted})
        mode = app.home.config_file.stat().st_mode & 0o777
        atomic_write(app.home.config_file, dump_config(updated), mode)

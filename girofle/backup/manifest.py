"""manifest.json: what a backup holds, with each file's size and sha256."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from girofle.errors import BackupError
from girofle.home import atomic_write

MANIFEST = "manifest.json"
CHUNK = 1 << 20


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str  # relative to the backup directory
    size: int
    sha256: str


class ProjectEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    # None: the project's wiki is disabled, so there are no pages to read (or to expect).
    wiki_pages: list[str] | None = Field(default_factory=list)
    id: int | None = None
    # Branches and tags with their commits, and how many commits they reach, as they were
    # both before and after GitLab's backup ran (None: not recorded, or changed meanwhile).
    refs: dict[str, str] | None = None
    commits: int | None = None


class Manifest(BaseModel):
    """A complete backup's description; its presence is what makes a backup complete."""

    model_config = ConfigDict(extra="forbid")

    kind: str  # "instance" or "girofle"
    instance: str | None = None
    created_at: dt.datetime
    girofle_version: str
    image: str | None = None
    gitlab_version: str | None = None
    gitlab_backup_id: str | None = None
    projects: list[ProjectEntry] = Field(default_factory=list)
    web_projects: list[str] = Field(default_factory=list)  # the instance's hostname projects
    hostnames: list[str] = Field(default_factory=list)
    durations: dict[str, float] = Field(default_factory=dict)
    files: list[FileEntry]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe_files(directory: Path) -> list[FileEntry]:
    """Every file under ``directory`` (the manifest excepted), with size and sha256."""
    return [
        FileEntry(
            path=p.relative_to(directory).as_posix(), size=p.stat().st_size, sha256=sha256_of(p)
        )
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    ]


def write_manifest(directory: Path, manifest: Manifest) -> None:
    atomic_write(directory / MANIFEST, manifest.model_dump_json(indent=2) + "\n", mode=0o600)


def read_manifest(directory: Path) -> Manifest:
    try:
        return Manifest.model_validate_json((directory / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{directory} has no manifest: it is not a complete backup") from None
    except ValidationError as err:
        raise BackupError(f"{directory / MANIFEST} is damaged: {err.errors()[0]['msg']}") from None


def verify(directory: Path) -> Manifest:
    """The manifest, once every file it lists is present with its size and sha256."""
    manifest = read_manifest(directory)
    for entry in manifest.files:
        path = directory / entry.path
        if not path.is_file():
            raise BackupError(f"backup {directory.name}: {entry.path} is missing")
        if path.stat().st_size != entry.size or sha256_of(path) != entry.sha256:
            raise BackupError(f"backup {directory.name}: {entry.path} does not match its checksum")
    return manifest

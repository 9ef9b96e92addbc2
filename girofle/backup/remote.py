"""Storage in another place: local backup directories pushed to a restic repository.

restic runs in the tools image that Girofle builds, so a host needs only Docker and
Girofle. The repository's password stays in its 0600 file, mounted read-only and named
by RESTIC_PASSWORD_FILE; it is never on a command line or in the environment.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from girofle.config import RemoteSettings, ToolsSettings
from girofle.errors import BackupError, UserError
from girofle.home import Home, read_private
from girofle.tools_image import ensure_tools_image

PASSWORD_IN_CONTAINER = "/run/girofle/restic-password"
KEY_IN_CONTAINER = "/run/girofle/ssh-key"
KNOWN_HOSTS_IN_CONTAINER = "/etc/ssh/ssh_known_hosts"  # read by ssh for every user
DATA_IN_CONTAINER = "/data"
SNAPSHOT_PATH = re.compile(r"/data/(instance|girofle)/[A-Za-z0-9._/-]+")


@dataclass(frozen=True)
class PushReport:
    """restic's own statistics of one backup."""

    snapshot_id: str
    data_added: int  # bytes added to the repository (after deduplication, before packing)
    bytes_processed: int
    seconds: float = 0.0  # restic's total_duration


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    tags: dict[str, str]
    time: str
    # Where its backup directory is in the repository (/data/instance/NAME, or, for
    # snapshots pushed before paths were stable, /data/instance/NAME/BACKUP_ID).
    path: str
    # The snapshot restic compared it with (the previous one of the same path), if any.
    parent: str | None = None


def default_password_file(home_root: Path) -> Path:
    return Home(home_root).home_secrets / "restic" / "password"


def ssh_command(remote: RemoteSettings) -> list[str]:
    """The ssh command restic runs for an sftp repository (its sftp.command, or the one
    restic derives from the URL); empty for other backends."""
    if remote.sftp_command:
        return shlex.split(remote.sftp_command)
    url = remote.repository
    if not url.startswith("sftp:"):
        return []
    rest = url.removeprefix("sftp:").removeprefix("//")
    authority = rest.split("/", 1)[0] if url.startswith("sftp://") else rest.split(":", 1)[0]
    user, _, hostport = authority.rpartition("@")
    host, _, port = hostport.partition(":") if url.startswith("sftp://") else (hostport, "", "")
    argv = ["ssh", host]
    if port:
        argv += ["-p", port]
    if user:
        argv += ["-l", user]
    return [*argv, "-s", "sftp"]


class Restic:
    """One restic repository, driven through `docker run` of the tools image."""

    def __init__(self, remote: RemoteSettings, home_root: Path, tools: ToolsSettings) -> None:
        self.remote = remote
        self.password_file = remote.password_file or default_password_file(home_root)
        self.tools = tools
        read_private(self.password_file, "the restic password")  # present, 0600, readable

    @cached_property
    def image(self) -> str:
        """The tools image, checked (and built when stale) once per repository object:
        a push runs restic several times."""
        return ensure_tools_image(self.tools)

    def _ssh_mounts(self) -> list[str]:
        argv = []
        if self.remote.ssh_key is not None:
            argv += ["-v", f"{self.remote.ssh_key}:{KEY_IN_CONTAINER}:ro"]
        if self.remote.known_hosts is not None:
            argv += ["-v", f"{self.remote.known_hosts}:{KNOWN_HOSTS_IN_CONTAINER}:ro"]
        return argv

    def _argv(self, args: list[str], mounts: list[tuple[Path, str, str]]) -> list[str]:
        argv = [
            "docker",
            "run",
            "--rm",
            "--network",
            "host",
            "-v",
            f"{self.password_file}:{PASSWORD_IN_CONTAINER}:ro",
            "-e",
            f"RESTIC_PASSWORD_FILE={PASSWORD_IN_CONTAINER}",
            "-e",
            f"RESTIC_REPOSITORY={self.remote.repository}",
            *self._ssh_mounts(),
        ]
        if self.remote.repository.startswith("/"):  # a plain path: the same path inside
            argv += ["-v", f"{self.remote.repository}:{self.remote.repository}"]
        for host, inside, mode in mounts:
            argv += ["-v", f"{host}:{inside}:{mode}"]
        argv += [self.image, "restic"]
        if self.remote.sftp_command:
            argv += ["-o", f"sftp.command={self.remote.sftp_command}"]
        return argv + args

    def run(self, args: list[str], mounts: list[tuple[Path, str, str]] | None = None) -> str:
        proc = subprocess.run(
            self._argv(args, mounts or []),
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
        if proc.returncode != 0:
            raise BackupError(self._explain(proc.stderr))
        return proc.stdout

    def _explain(self, stderr: str) -> str:
        text = stderr.strip()
        repo = self.remote.repository
        if "wrong password" in text:
            return f"the restic password in {self.password_file} does not open {repo}"
        if "sftp" in text and "Host key verification failed" not in text:
            # restic copies ssh's stderr from a goroutine it does not wait for, so ssh's own
            # reason is often lost when the session fails to start: ask ssh itself.
            text += "\n" + self._ssh_probe()
        if "Host key verification failed" in text:
            return (
                f"the remote {repo} failed: its sftp server's host key is not known "
                "(set remote.known_hosts to a file with it, e.g. from ssh-keyscan)"
            )
        lines = [line for line in text.splitlines() if line.strip()]
        last = lines[-1] if lines else "no output"
        return f"the remote {repo} failed: {last}"

    def _ssh_probe(self) -> str:
        """What ssh says when run as restic runs it, for a session that did not start."""
        command = ssh_command(self.remote)
        if not command:
            return ""
        options = ["-o", "BatchMode=yes"]  # never a prompt: stdin is closed
        argv = ["docker", "run", "--rm", "--network", "host", *self._ssh_mounts()]
        argv += [self.image, command[0], *options, *command[1:]]
        try:
            proc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
            )
        except subprocess.TimeoutExpired:
            return ""
        return proc.stderr

    def ensure_initialised(self) -> None:
        """Create the repository on first use (restic cat config fails on a missing one)."""
        try:
            self.run(["cat", "config"])
        except BackupError as err:
            if "does not open" in str(err):
                raise
            self.run(["init"])

    def push(self, directory: Path, path_in_repo: str, tags: dict[str, str]) -> PushReport:
        """Back up ``directory`` as /data/<path_in_repo>; return restic's summary of it.

        The path is the same for every backup of one instance (the backup's id is a tag):
        restic takes the previous snapshot of the same host and path as the parent, so a
        second push reads and adds only what changed."""
        self.ensure_initialised()
        inside = f"{DATA_IN_CONTAINER}/{path_in_repo}"
        args = ["backup", "--json", "--host", "girofle"]
        for key, value in tags.items():
            args += ["--tag", f"{key}={value}"]
        out = self.run([*args, inside], [(directory, inside, "ro")])
        summary = [json.loads(line) for line in out.splitlines() if '"summary"' in line]
        if not summary:
            raise BackupError("restic backup did not report a snapshot")
        last = summary[-1]
        return PushReport(
            str(last["snapshot_id"]),
            int(last.get("data_added", 0)),
            int(last.get("total_bytes_processed", 0)),
            round(float(last.get("total_duration", 0.0)), 3),
        )

    def snapshots(self, tags: dict[str, str]) -> list[Snapshot]:
        args = ["snapshots", "--json"]
        for key, value in tags.items():
            args += ["--tag", f"{key}={value}"]
        listed = json.loads(self.run(args) or "[]") or []
        result = []
        for snap in listed:
            pairs = dict(t.split("=", 1) for t in snap.get("tags") or [] if "=" in t)
            paths = snap.get("paths") or [""]
            parent = snap.get("parent")
            result.append(
                Snapshot(
                    snap["short_id"],
                    pairs,
                    snap["time"],
                    str(paths[0]),
                    str(parent)[:8] if parent else None,
                )
            )
        return sorted(result, key=lambda s: s.time)

    def fetch(self, snapshot: Snapshot, target: Path) -> None:
        """Restore a snapshot's backup directory into the empty directory ``target``."""
        inside = snapshot.path
        # A path read from the repository becomes a mount: only one Girofle writes.
        if not SNAPSHOT_PATH.fullmatch(inside) or "/../" in f"{inside}/":
            raise BackupError(f"snapshot {snapshot.snapshot_id} holds {inside!r}, not a backup")
        target.mkdir(parents=True, exist_ok=True)
        self.run(
            ["restore", snapshot.snapshot_id, "--target", "/", "--include", inside],
            [(target, inside, "rw")],
        )


def restic_for(remote: RemoteSettings | None, home_root: Path, tools: ToolsSettings) -> Restic:
    if remote is None:
        raise UserError("no remote is set: add a `remote:` section (repository) to girofle.yml")
    return Restic(remote, home_root, tools)


def instance_path(name: str) -> str:
    """Where every backup of instance ``name`` is pushed in the repository."""
    return f"instance/{name}"


def home_path() -> str:
    """Where every backup of Girofle's home is pushed in the repository."""
    return "girofle/home"


def fetch_into(restic: Restic, snapshot: Snapshot, final: Path) -> Path:
    """Fetch a snapshot's backup directory to ``final``, through a partial directory."""
    if final.exists():
        return final  # already here, complete (a local backup is renamed only when complete)
    partial = final.with_name(f".partial-remote-{final.name}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        restic.fetch(snapshot, partial)
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def pick(snapshots: list[Snapshot], backup_id: str, what: str) -> Snapshot:
    if not snapshots:
        raise UserError(f"the remote holds no backup of {what}")
    if backup_id == "latest":
        return snapshots[-1]
    for snap in snapshots:
        if snap.tags.get("backup") == backup_id:
            return snap
    raise UserError(f"the remote holds no backup {backup_id!r} of {what}")

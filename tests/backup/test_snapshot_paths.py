"""Which repository paths a remote fetch mounts: both layouts Girofle has pushed, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from girofle.backup.remote import Restic, Snapshot
from girofle.config import RemoteSettings, ToolsSettings
from girofle.errors import BackupError


@pytest.mark.parametrize(
    "path",
    ["/data/instance/a-1/..", "/data/instance/../../etc", "/etc/passwd", "", "/data/other/x"],
)
def test_a_snapshot_path_that_is_not_a_backup_is_refused_before_any_mount(
    tmp_path: Path, path: str
) -> None:
    password = tmp_path / "password"
    password.write_text("x\n")
    password.chmod(0o600)
    restic = Restic(
        RemoteSettings(repository=str(tmp_path / "repo"), password_file=password),
        tmp_path,
        ToolsSettings(),
    )
    snapshot = Snapshot("abcd1234", {"backup": "x"}, "2026-01-01T00:00:00Z", path)
    with pytest.raises(BackupError, match="not a backup"):
        restic.fetch(snapshot, tmp_path / "target")
    assert not (tmp_path / "target").exists()


@pytest.mark.parametrize("path", ["/data/instance/a-1", "/data/instance/a-1/20260101T000000Z"])
def test_both_layouts_are_backups(path: str) -> None:
    from girofle.backup.remote import SNAPSHOT_PATH

    assert SNAPSHOT_PATH.fullmatch(path)

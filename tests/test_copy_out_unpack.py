"""What a copy out of a container may write: regular files and directories under the
destination, never a link, a device or a path outside it."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from girofle.docker.gateway import unpack_copy


def archive(*members: tuple[str, bytes | None, int, bytes]) -> tarfile.TarFile:
    """A streamed tar of (name, content or None for a directory, mode, type) members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content, mode, kind in members:
            info = tarfile.TarInfo(name)
            info.mode, info.type = mode, kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
            info.size = len(content or b"")
            tar.addfile(info, io.BytesIO(content) if content else None)
    buffer.seek(0)
    return tarfile.open(fileobj=buffer, mode="r|")


def test_a_directory_lands_as_the_destination_without_special_bits(tmp_path: Path) -> None:
    tar = archive(
        ("staging", None, 0o755, tarfile.DIRTYPE),
        ("staging/gitlab_config_1.tar", b"config", 0o4755, tarfile.REGTYPE),
    )
    unpack_copy(tar, "staging", tmp_path / ".copy")
    copied = tmp_path / ".copy" / "gitlab_config_1.tar"
    assert copied.read_bytes() == b"config"
    assert copied.stat().st_mode & 0o7777 == 0o755  # no setuid


@pytest.mark.parametrize(
    "member",
    [
        ("staging/link", None, 0o777, tarfile.SYMTYPE),
        ("staging/../outside", b"x", 0o644, tarfile.REGTYPE),
        ("/etc/outside", b"x", 0o644, tarfile.REGTYPE),
        ("other/file", b"x", 0o644, tarfile.REGTYPE),
        ("staging/fifo", None, 0o644, tarfile.FIFOTYPE),
    ],
)
def test_anything_else_is_refused_and_nothing_lands_outside(
    tmp_path: Path, member: tuple[str, bytes | None, int, bytes]
) -> None:
    destination = tmp_path / "in" / ".copy"
    destination.parent.mkdir()
    tar = archive(("staging", None, 0o755, tarfile.DIRTYPE), member)
    with pytest.raises(tarfile.TarError):
        unpack_copy(tar, "staging", destination)
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".copy", "in"]

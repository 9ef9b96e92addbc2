"""Girofle runs as the user who owns its home; and it never looks for git on the host."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

GIROFLE = str(Path(sys.executable).parent / "girofle")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def shared_home() -> Iterator[Path]:
    """A home another user can reach (pytest's own tmp is root's alone), owned by uid 4242."""
    parent = Path(tempfile.mkdtemp(prefix="girofle-users-"))
    parent.chmod(0o755)
    home = parent / "home"
    home.mkdir()
    (home / "girofle.yml").write_text(
        f"home_id: shared\ndata_root: {home / 'data'}\naddresses: [127.0.0.1]\n"
    )
    for path in (home, home / "girofle.yml"):
        os.chown(path, 4242, 4242)
    yield home
    shutil.rmtree(parent)


def run(home: Path, *argv: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIROFLE_HOME": str(home)}
    return subprocess.run(
        [*prefix, GIROFLE, *argv], capture_output=True, text=True, env=env, check=False
    )


def test_another_user_is_refused_in_one_line_naming_the_owner(shared_home: Path) -> None:
    proc = run(shared_home, "ls", "--json", prefix=tuple(NOBODY))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"girofle: {shared_home} belongs to uid 4242: run Girofle as uid 4242 "
        "(sudo -u uid 4242 girofle ...)"
    ]


def test_root_proceeds_with_a_one_line_warning(shared_home: Path) -> None:
    proc = run(shared_home, "routes", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "girofle: warning: running as root in a home that belongs to uid 4242 "
        "(files made now are root's)"
    ]
    assert '"hostname": "traefik.kytes.io"' in proc.stdout  # the dashboard's route

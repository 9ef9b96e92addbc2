"""Girofle never needs git on the host: its commands run with a PATH whose only program is
docker (no git to find, so any command that ran or looked for git would fail)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fleet import Fleet, instance_name

pytestmark = pytest.mark.engine


def test_no_command_looks_for_git(make_fleet: Callable[[], Fleet], tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = shutil.which("docker")
    assert docker is not None
    (bin_dir / "docker").symlink_to(docker)
    fleet = make_fleet()
    fleet.env = {**fleet.env, "PATH": str(bin_dir)}
    name = instance_name("nogit")
    fleet.init("--first-instance", name, "-c", "backups.scheduler=none", routing="ports")
    fleet.run("reconfigure", name, "--set", "gitlab_rails.time_zone=UTC")
    backup = fleet.run("backup", name).stdout.strip()
    fleet.run("restore", name, "--backup", backup, "--force")
    assert [r["state"] for r in fleet.ls()] == ["healthy"]
    fleet.run("rm", name, "--no-backup")
    assert sorted(p.name for p in bin_dir.iterdir()) == ["docker"]

"""Girofle's own backup restored on another host: its data root, and its secrets' modes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from girofle.backup.home import _backup_home_locally, restore_home, sauvegardes
from girofle.config import load_config
from girofle.home import Home, write_private
from girofle.lifecycle.app import App


def test_a_home_restored_under_another_data_root_uses_it_and_keeps_modes(
    tmp_path: Path,
) -> None:
    old = Home(tmp_path / "old-home")
    old.root.mkdir()
    old_data = tmp_path / "old-host" / "data"
    old.config_file.write_text(
        f"home_id: moved-home\ndata_root: {old_data}\naddresses: [127.0.0.1]\n"
    )
    old.config_file.chmod(0o600)
    old.inventory_file.write_text('{"instances": {}}\n')
    write_private(old.instance_secret_file("alpha", "root_password"), "pw\n")
    write_private(old.home_secrets / "ca" / "ca.key", "key\n")
    backup_id = _backup_home_locally(App(old))

    new_data = tmp_path / "new-host" / "data"
    shutil.copytree(sauvegardes(old_data), sauvegardes(new_data))
    new = Home(tmp_path / "new-home")
    assert restore_home(App(new), new_data, backup_id) == backup_id
    assert load_config(new.config_file).data_root == new_data
    assert new.config_file.stat().st_mode & 0o777 == 0o600
    for directory in (new.secrets, new.instance_secrets("alpha"), new.home_secrets / "ca"):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
    assert new.instance_secret_file("alpha", "root_password").stat().st_mode & 0o777 == 0o600


def test_an_old_home_layout_is_moved_apart_on_first_use(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.root.mkdir()
    home.config_file.write_text(
        f"home_id: old\ndata_root: {tmp_path / 'data'}\naddresses: [127.0.0.1]\n"
    )
    # The layout before: an instance named `ca` would have shared secrets/ca with the CA.
    write_private(home.secrets / "ca" / "ca.key", "the ca key\n")
    write_private(home.secrets / "restic" / "password", "restic\n")
    write_private(home.secrets / "alpha" / "root_password", "pw\n")
    compose = home.stack_dir("alpha") / "docker-compose.yml"
    compose.parent.mkdir(parents=True)
    old_path = json.dumps(str(home.secrets / "alpha" / "root_password"))
    compose.write_text(f"secrets:\n  gitlab_root_password:\n    file: {old_path}\n")

    said: list[str] = []
    App(home, progress=said.append).config  # noqa: B018 - first use migrates

    assert sorted(p.name for p in home.secrets.iterdir()) == ["home", "instances"]
    assert (home.home_secrets / "ca" / "ca.key").read_text() == "the ca key\n"
    assert (home.home_secrets / "restic" / "password").read_text() == "restic\n"
    moved = home.instance_secret_file("alpha", "root_password")
    assert moved.read_text() == "pw\n"
    assert yaml.safe_load(compose.read_text())["secrets"]["gitlab_root_password"]["file"] == str(
        moved
    )
    for directory in (home.home_secrets, home.secrets / "instances", moved.parent):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
    assert len(said) == 3
    App(home).config  # noqa: B018 - a second use has nothing left to move
    assert moved.read_text() == "pw\n"

"""Girofle's own backup restored on another host: its data root, and its secrets' modes."""

from __future__ import annotations

import shutil
from pathlib import Path

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
    write_private(old.secret_file("alpha", "root_password"), "pw\n")
    write_private(old.secrets / "ca" / "ca.key", "key\n")
    backup_id = _backup_home_locally(App(old))

    new_data = tmp_path / "new-host" / "data"
    shutil.copytree(sauvegardes(old_data), sauvegardes(new_data))
    new = Home(tmp_path / "new-home")
    assert restore_home(App(new), new_data, backup_id) == backup_id
    assert load_config(new.config_file).data_root == new_data
    assert new.config_file.stat().st_mode & 0o777 == 0o600
    for directory in (new.secrets, new.secrets / "alpha", new.secrets / "ca"):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
    assert (new.secret_file("alpha", "root_password")).stat().st_mode & 0o777 == 0o600

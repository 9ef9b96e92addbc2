"""What the manager hands Girofle on a swarm node: a node home that needs no migration,
whose settings point at the handed credentials, and journals that survive a handover."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from girofle.config import GirofleConfig, load_config
from girofle.errors import UserError
from girofle.home import Home, needs_migration, write_private
from girofle.inventory import RestoreRecord, editing, read_inventory
from girofle.targets.on_node import (
    Handover,
    handed_inventory,
    handover,
    node_home,
    take_handed_inventory,
)
from tests.render.test_compose import spec


def manager_home(tmp_path: Path) -> tuple[Home, GirofleConfig]:
    base = spec(tmp_path, scheduler="none", node="n0de1d")
    home = Home(tmp_path / "manager")
    key, known = tmp_path / "id", tmp_path / "known_hosts"
    write_private(key, "PRIVATE KEY\n")
    known.write_text("[10.0.0.1]:2222 ssh-ed25519 AAAA\n")
    write_private(home.home_secrets / "restic" / "password", "s3cret\n")
    remote = {"repository": "sftp:b@10.0.0.1:/r", "ssh_key": key, "known_hosts": known}
    config = base.config.model_validate(
        {**base.config.model_dump(), "target": "swarm", "remote": remote}
    )
    with editing(home) as inventory:
        inventory.instances["alpha"] = base.instance
    return home, config


def lay_out(files: list[Handover], root: Path) -> Home:
    """What the job's script does with the handed files: each into the node home, 0600."""
    for handed in files:
        write_private(root / handed.path, handed.data)
    return Home(root)


def test_the_node_home_holds_the_credentials_where_its_settings_say(tmp_path: Path) -> None:
    home, config = manager_home(tmp_path)
    files = handover(config, home, "alpha")
    assert {f.path for f in files if f.secret} == {
        "secrets/home/restic/password",
        "secrets/home/restic/ssh-key",
    }
    node = lay_out(files, node_home(config.data_root))
    assert not needs_migration(node)  # nothing in it looks like an older layout
    remote = load_config(node.config_file).remote
    assert remote is not None
    assert remote.password_file is not None and remote.password_file.read_text() == "s3cret\n"
    assert remote.ssh_key is not None and remote.ssh_key.read_text() == "PRIVATE KEY\n"
    assert remote.known_hosts is not None and remote.known_hosts.is_relative_to(node.root)
    # The secrets are nowhere in what is not a secret.
    assert not [f.path for f in files if not f.secret and b"s3cret" in f.data]


def test_a_handover_keeps_the_nodes_journal_of_a_restore_under_way(tmp_path: Path) -> None:
    home, config = manager_home(tmp_path)
    node = lay_out(handover(config, home, "alpha"), tmp_path / "node")
    take_handed_inventory(node, "alpha")
    started = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    journal = RestoreRecord(source="alpha", backup_id="20261127T000000Z", started_at=started)
    with editing(node) as inventory:
        inventory.restores["alpha"] = journal  # a restore there, killed half-way
    with editing(home) as inventory:  # the manager's record moves on meanwhile
        inventory.instances["alpha"].projects.append("docs")
    lay_out(handover(config, home, "alpha"), node.root)
    assert (node.root / handed_inventory("alpha")).is_file()
    take_handed_inventory(node, "alpha")
    merged = read_inventory(node)
    assert merged.restores["alpha"] == journal  # a rerun there resumes it
    assert merged.instances["alpha"].projects == ["web", "api", "docs"]


def test_a_remote_file_that_cannot_be_handed_over_is_one_line(tmp_path: Path) -> None:
    home, config = manager_home(tmp_path)
    assert config.remote is not None and config.remote.ssh_key is not None
    config.remote.ssh_key.unlink()
    with pytest.raises(UserError, match=r"^remote\.ssh_key: .* cannot be read"):
        handover(config, home, "alpha")
    (home.home_secrets / "restic" / "password").chmod(0o644)  # restic's own rule, here too
    with pytest.raises(UserError, match="must be mode 0600"):
        handover(config, home, "alpha")

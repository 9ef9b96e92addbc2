"""While another process upgrades an instance, start, stop, restart and reconfigure refuse."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from girofle.errors import ConflictError
from girofle.home import Home
from girofle.inventory import Endpoint, Instance, Inventory, UpgradeRecord
from girofle.lifecycle import power, records
from girofle.lifecycle.app import App

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)


@pytest.fixture
def upgrader() -> Iterator[int]:
    """A live process standing for another girofle that upgrades."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc.pid
    proc.kill()
    proc.wait()


def home_with_upgrade(tmp_path: Path, pid: int) -> App:
    home = Home(tmp_path / "home")
    home.root.mkdir()
    home.config_file.write_text(
        f"home_id: guard\ndata_root: {tmp_path / 'data'}\naddresses: [127.0.0.1]\n"
    )
    instance = Instance(
        name="alpha",
        state="running",
        image="gitlab/gitlab-ce:18.8.11-ce.0",
        address="127.0.0.1",  # type: ignore[arg-type]
        projects=["gitlab"],
        ssh=Endpoint(address="127.0.0.1", port=2222),  # type: ignore[arg-type]
        subnet="10.200.0.0/24",  # type: ignore[arg-type]
        created_at=NOW,
    )
    record = UpgradeRecord(
        target="19.0.1",
        path=["18.11.11", "19.0.1"],
        start_image=instance.image,
        started_at=NOW,
        pid=pid,
    )
    inventory = Inventory(instances={"alpha": instance}, upgrades={"alpha": record})
    home.inventory_file.write_text(inventory.model_dump_json())
    return App(home)


def test_power_commands_refuse_while_another_process_upgrades(
    tmp_path: Path, upgrader: int
) -> None:
    app = home_with_upgrade(tmp_path, upgrader)
    for operation in (power.start, power.stop, power.restart):
        with pytest.raises(ConflictError, match=r"is being upgraded to GitLab 19\.0\.1"):
            operation(app, "alpha")


def test_a_dead_upgrader_does_not_block(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    app = home_with_upgrade(tmp_path, dead.pid)
    # Past the guard, stop goes to the engine; here none is needed to see it was let by.
    assert records.live(app, "alpha").name == "alpha"

"""The inventory: which instances exist, their state and their (address, port) pairs.

It is one JSON file, changed only under the home's inventory lock and written atomically,
so concurrent Girofle processes and crashes never leave it half-written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from girofle.errors import GirofleError, NotFoundError
from girofle.home import INVENTORY_VERSION, Home, atomic_write
from girofle.quick.rows import finish_restore_command, restore_state, upgrade_state
from girofle.render.gitlab_rb import typed_value

InstanceState = Literal["creating", "running", "stopped", "failed", "decommissioned"]


class Endpoint(BaseModel):
    """An (address, port) pair on the host."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: IPv4Address
    port: int = Field(ge=1, le=65535)

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


class Instance(BaseModel):
    """One GitLab instance as Girofle recorded it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    state: InstanceState
    image: str
    address: IPv4Address
    projects: list[str]
    ssh: Endpoint
    http: Endpoint | None = None  # only in `ports` routing
    # The instance's own network; Girofle allocates it, since Docker's default pools
    # hold only about thirty networks.
    subnet: IPv4Network
    # gitlab.rb settings from --set and --set-json, typed (rendered by gitlab_rb.ruby_value).
    settings: dict[str, JsonValue] = Field(default_factory=dict)
    version: str | None = None
    created_at: dt.datetime
    last_backup: dt.datetime | None = None
    # The outcome of the last backup attempt, scheduled or asked for: "ok", or why it failed.
    last_backup_result: str | None = None
    # The swarm node that holds its volumes and runs it (target: swarm), by node ID.
    node: str | None = None

    def endpoints(self) -> list[Endpoint]:
        return [e for e in (self.ssh, self.http) if e is not None]


class RestoreRecord(BaseModel):
    """A restore under way, recorded before it changes anything: a rerun after a kill or a
    failure resumes this very backup (never the safety backup it took, newer since)."""

    model_config = ConfigDict(extra="forbid")

    source: str  # the instance whose backup it is
    backup_id: str
    fresh: bool = False  # the target was commissioned by this restore
    safety_backup: str | None = None  # taken of the target before restoring over it
    started_at: dt.datetime
    failed: str | None = None  # why the last attempt failed, if it did
    pid: int | None = None  # the girofle process restoring, while it runs

    def state(self) -> str:
        """restoring while its process lives, else restore-failed (failed or killed)."""
        return restore_state(self.failed, self.pid)

    def command(self, target: str) -> str:
        """The command that finishes this restore."""
        return finish_restore_command(self.source, self.backup_id, target)


class UpgradeRecord(BaseModel):
    """An upgrade under way, journalled hop by hop: a rerun after a kill resumes it."""

    model_config = ConfigDict(extra="forbid")

    target: str
    path: list[str]  # the versions of the hops, in order
    start_image: str
    done: int = 0  # hops completed
    backups: list[str] = Field(default_factory=list)  # taken before each hop, in order
    started_at: dt.datetime
    failed: str | None = None
    pid: int | None = None

    def state(self) -> str:
        """upgrading while its process lives, else upgrade-failed (failed or killed)."""
        return upgrade_state(self.failed, self.pid)


class MoveRecord(BaseModel):
    """A move to another swarm node under way, recorded before it changes anything: a
    rerun after a kill or a failure resumes it from where it stopped."""

    model_config = ConfigDict(extra="forbid")

    source: Instance  # the instance as it was on the node it leaves
    node: str  # the node it goes to, by ID
    backup_id: str | None = None  # the backup it carries, once taken (and pushed)
    started_at: dt.datetime


class DrillRecord(BaseModel):
    """The last restore drill of an instance's backups: when, which backup, the verdict."""

    model_config = ConfigDict(extra="forbid")

    at: dt.datetime
    backup_id: str
    source: Literal["local", "remote"]
    ok: bool
    detail: str  # "ok", or the first failure
    seconds: float


class Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = INVENTORY_VERSION
    instances: dict[str, Instance] = Field(default_factory=dict)
    # Restores under way or unfinished, by target instance (which may not exist yet).
    restores: dict[str, RestoreRecord] = Field(default_factory=dict)
    # Upgrades under way or stopped by a failure, by instance.
    upgrades: dict[str, UpgradeRecord] = Field(default_factory=dict)
    # The last drill of each instance's backups (also of instances this home does not run).
    drills: dict[str, DrillRecord] = Field(default_factory=dict)
    # Moves to another swarm node under way, by instance.
    moves: dict[str, MoveRecord] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, data: Any) -> Any:
        """An inventory without a version stored --set values as text, which rendering
        typed (true/false/nil and integers): type them now, as they were rendered."""
        if isinstance(data, dict) and "version" not in data:
            for instance in (data.get("instances") or {}).values():
                if isinstance(instance, dict) and isinstance(instance.get("settings"), dict):
                    instance["settings"] = {
                        k: None if v == "nil" else typed_value(v) if isinstance(v, str) else v
                        for k, v in instance["settings"].items()
                    }
            data = {**data, "version": INVENTORY_VERSION}
        return data

    def get(self, name: str) -> Instance:
        try:
            return self.instances[name]
        except KeyError:
            raise NotFoundError(f"no instance named {name!r} (see `girofle ls`)") from None

    def holders(self, excluding: str | None = None) -> list[Instance]:
        """Instances that hold pairs and a subnet: all but the decommissioned (and
        ``excluding``, an instance whose own claims do not count against it)."""
        return [
            i
            for i in self.instances.values()
            if i.state != "decommissioned" and i.name != excluding
        ]

    def endpoints_in_use(self, excluding: str | None = None) -> set[Endpoint]:
        """Every pair held by an instance that is not decommissioned."""
        return {e for i in self.holders(excluding) for e in i.endpoints()}

    def subnets_in_use(self, excluding: str | None = None) -> set[IPv4Network]:
        """Subnets held by instances that are not decommissioned."""
        return {i.subnet for i in self.holders(excluding)}


def read_inventory(home: Home) -> Inventory:
    """The inventory as last written (empty when none exists yet)."""
    try:
        text = home.inventory_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Inventory()
    except (OSError, UnicodeDecodeError) as err:
        reason = "it is not UTF-8" if isinstance(err, UnicodeDecodeError) else err.strerror
        raise GirofleError(f"{home.inventory_file} cannot be read: {reason}") from None
    try:
        return Inventory.model_validate_json(text)
    except ValidationError as err:
        raise GirofleError(f"{home.inventory_file} is damaged: {err.errors()[0]['msg']}") from None


@contextlib.contextmanager
def editing(home: Home) -> Iterator[Inventory]:
    """Read, let the caller change, and write back the inventory, all under one lock."""
    with home.lock("inventory"):
        inventory = read_inventory(home)
        yield inventory
        atomic_write(home.inventory_file, inventory.model_dump_json(indent=2) + "\n")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)

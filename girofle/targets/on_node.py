"""Girofle run on an instance's swarm node, for work that must happen where the instance's
data is (its backups, its restores).

The manager runs a one-shot job on the node, in the tools image (Girofle itself), holding
that node's engine socket and data root at the same path. What the node's Girofle needs is
handed over in the job, never on a command line: girofle.yml, the instance's part of the
inventory (swarm configs) and the remote's credentials (swarm secrets). The job lays them out
as a node home, ``<data_root>/girofle-node`` (0700, files 0600), whose locks and journals
stay on the node between runs, then runs the command there with the node's view of the
target (the instance's container on this engine).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from girofle.errors import DockerError, UserError
from girofle.home import Home
from girofle.targets import OnHealthChange, _quiet
from girofle.targets.swarm import SwarmTarget

if TYPE_CHECKING:
    from girofle.config import GirofleConfig
    from girofle.targets import Target

# Set in the job's environment: Girofle there is on the node, not on the manager.
NODE_ENV = "GIROFLE_SWARM_NODE"
HANDOVER = "/run/girofle/handover"
# Run by the job: every handed-over file into the node home, 0600, each replaced at once
# (another job may read it meanwhile), the instance's records merged into the node's
# inventory, then Girofle there. The home and the instance's name are arguments, never
# spliced into the script; the file names are Girofle's own.
ENTRY = r"""set -e
home="$1"; name="$2"; shift 2
umask 077
mkdir -p "$home"
chmod 0700 "$home"
cd /run/girofle/handover
find . -type f | while read -r f; do
  install -D -m 0600 "$f" "$home/$f.new.$$" && mv -f "$home/$f.new.$$" "$home/$f"
done
/opt/girofle/bin/python -m girofle.targets.on_node "$home" "$name"
GIROFLE_HOME="$home" exec girofle "$@"
"""
# How long the manager waits for Girofle on a node: the work's own steps have their own
# timeouts (gitlab_backup_timeout, ...); a job that outlives this still runs there.
RUN_TIMEOUT = 24 * 3600.0


@dataclass(frozen=True)
class Handover:
    """A file the node's Girofle gets, by its path in the node home."""

    path: str
    data: bytes
    secret: bool = False


def node_home(data_root: Path) -> Path:
    """Where Girofle keeps its home on a node (beside the instances' directories)."""
    return data_root / "girofle-node"


def on_node() -> bool:
    """True in a job the manager runs on a node."""
    return os.environ.get(NODE_ENV) == "1"


def delegated(config: GirofleConfig) -> bool:
    """True where work on an instance's data is handed to Girofle on its node: on a swarm's
    manager (every instance, the manager's own too, takes the same way)."""
    return config.target == "swarm" and not on_node()


def run_there(
    target: Target,
    name: str,
    argv: Sequence[str],
    timeout: float = RUN_TIMEOUT,
    accept: Sequence[int] = (),
) -> str:
    """``girofle ARGV`` run on instance ``name``'s node; its stdout (see `delegated`), also
    when it exits with one of the codes ``accept`` (a verdict printed, then a failure)."""
    assert isinstance(target, SwarmTarget), "only a swarm's manager hands work to a node"
    return target.run_girofle(name, argv, timeout, accept)


def handover(config: GirofleConfig, home: Home, name: str) -> list[Handover]:
    """What Girofle on instance ``name``'s node needs: the settings (the remote's files
    pointing into the node home), the instance's records, and the remote's credentials."""
    from girofle.backup.remote import restic_for
    from girofle.config import dump_config
    from girofle.inventory import Inventory, read_inventory

    inventory = read_inventory(home)
    mine = Inventory(
        instances={name: inventory.get(name)},
        restores={t: r for t, r in inventory.restores.items() if name in (t, r.source)},
        upgrades={n: u for n, u in inventory.upgrades.items() if n == name},
    )
    files = [Handover(handed_inventory(name), mine.model_dump_json(indent=2).encode())]
    remote = config.remote
    if remote is not None:
        # In the node home's own tree of secrets, where its Girofle looks for them.
        there = Home(node_home(config.data_root))
        kept = there.home_secrets.relative_to(there.root) / "restic"
        # The password file as restic would use it here (checked there: present, 0600).
        password = restic_for(remote, home.root, config.tools).password_file
        handed = {  # setting: (its file here, its name there, whether a secret)
            "password_file": (password, "password", True),
            "ssh_key": (remote.ssh_key, "ssh-key", True),
            "known_hosts": (remote.known_hosts, "known_hosts", False),
        }
        moved: dict[str, Path] = {}
        for key, (source, name_there, secret) in handed.items():
            if source is not None:
                files.append(Handover(str(kept / name_there), _read(source, key), secret))
                moved[key] = there.root / kept / name_there
        config = config.model_copy(update={"remote": remote.model_copy(update=moved)})
    files.append(Handover("girofle.yml", dump_config(config).encode()))
    return files


def _read(path: Path, setting: str) -> bytes:
    """A file girofle.yml's remote names, or one line saying why it cannot be handed over."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"remote.{setting}: {path} cannot be read: {err.strerror or err}") from None


class SwarmNodeTarget(SwarmTarget):
    """The Swarm target as Girofle sees it in a job on an instance's node: the instance's
    container runs on this very engine."""

    @cached_property
    def local_node(self) -> str:
        """This node's ID (a worker is no manager, and need not be one here)."""
        node, _ = self.swarm.local_node()
        return node

    def container(self, name: str) -> str:
        """The ID of the container of instance ``name``'s running task on this node."""
        running = [
            c.id
            for c in self.engine.containers({"com.docker.swarm.service.name": self._service(name)})
            if c.running
        ]
        if not running:
            raise DockerError(f"{name} has no running container on this node")
        return running[0]

    def restart(self, name: str) -> bool:
        """Stop the instance's container: Swarm replaces it with a new task on this node
        (its restart policy). Never `docker restart` a task's container: the engine starts
        it again while Swarm, which saw it stop, starts another on the same data."""
        old = self.container(name)
        stopped = self.engine.container(old)
        assert stopped is not None
        self.engine.stop([stopped], self.config.gitlab.stop_grace_period)
        deadline = time.monotonic() + self.config.gitlab.health_timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(DockerError):
                if self.container(name) != old:
                    return True
            time.sleep(0.5)
        raise DockerError(f"Swarm started no new task for {name} after its container stopped")

    def wait_healthy(
        self,
        name: str,
        timeout: float,
        on_change: OnHealthChange = _quiet,
        stop_on_crash: bool = False,
    ) -> None:
        """Until Docker says the container of the instance's task healthy."""
        self.engine.wait_healthy(self.container(name), timeout, on_change, stop_on_crash)

    def exec(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Run ``argv`` in the instance's container, on this engine."""
        return self.engine.exec(self.container(name), list(argv), env=env, timeout=timeout)


def handed_inventory(name: str) -> str:
    """Where, in the node home, the inventory handed for instance ``name`` lands (one per
    instance: jobs for two instances may run on one node at once)."""
    return f"handed/{name}.json"


def take_handed_inventory(home: Home, name: str) -> None:
    """Merge the inventory the manager handed over into the node home's: the manager's
    instance records win (it keeps the fleet); the node's records of work under way
    (restores, upgrades), which a killed job left, stay, so that a rerun resumes them."""
    from girofle.inventory import Inventory, editing

    handed = Inventory.model_validate_json((home.root / handed_inventory(name)).read_text())
    with editing(home) as inventory:
        inventory.instances.update(handed.instances)
        for target, restore in handed.restores.items():
            inventory.restores.setdefault(target, restore)
        for upgraded, upgrade in handed.upgrades.items():
            inventory.upgrades.setdefault(upgraded, upgrade)


if __name__ == "__main__":  # run by ENTRY, in the job, before the command
    import sys

    take_handed_inventory(Home(Path(sys.argv[1])), sys.argv[2])

"""A Girofle home per test, driven through the real `girofle` command (shared fixtures)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import DockerClient, DockerException

from tests.helpers import HOME_LABEL, session_home_id, unique
from tests.images.build import BuiltImages

GIROFLE = str(Path(sys.executable).parent / "girofle")
HEALTH_TIMEOUT = 60
TOOLS_IMAGE = "girofle-test/tools:latest"
# A schedule that does not fire during a test run (midnight on New Year's Day). The default
# ones fire every four hours: a scheduled backup taken by an instance's sidecar in the middle
# of a test holds the instance's lock, and the test's own command is then refused as busy.
NEVER_SOON = "'0 0 1 1 *'"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class EdgeAnswer:
    """What curl got through the edge: status 0 when the connection or TLS failed."""

    status: int
    body: str
    location: str


@dataclass
class Fleet:
    """One Girofle home on the real engine, and the commands to drive it."""

    root: Path
    home_id: str
    images: BuiltImages
    traefik_port: int
    https_port: int = field(default_factory=lambda: free_port())
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self,
        *args: str,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 300,
        input_text: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [GIROFLE, *args],
            input=input_text,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"girofle {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
            )
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [GIROFLE, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )

    def ls(self) -> list[dict[str, Any]]:
        return json.loads(self.run("ls", "--json").stdout)  # type: ignore[no-any-return]

    def inventory(self) -> dict[str, Any]:
        return json.loads((self.root / "inventory.json").read_text())  # type: ignore[no-any-return]

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    def events(self, instance: str) -> list[tuple[str, str, str]]:
        """The stand-in's event log of an instance, read from its log volume on the host."""
        log = self.data_root / f"noeud-gitlab-{instance}/mapping-volumes/log/standin/events.log"
        return [tuple(line.split(" ", 2)) for line in log.read_text().splitlines()]  # type: ignore[misc]

    def init(
        self, *extra: str, routing: str = "traefik", default_schedules: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """`girofle init` of this home for tests; its backups and drills are never due during
        a test unless ``default_schedules`` (or ``extra``, which comes last) says otherwise."""
        ssh_first = random.randrange(20000, 40000, 500)
        schedules = (
            ()
            if default_schedules
            else (
                "-c",
                f"backups.schedule={NEVER_SOON}",
                "-c",
                f"drills.schedule={NEVER_SOON}",
            )
        )
        return self.run(
            "init",
            "--yes",
            "--routing",
            routing,
            "--traefik-image",
            self.images.traefik,
            "--traefik-port",
            str(self.traefik_port),
            "-c",
            f"traefik.https_port={self.https_port}",
            "-c",
            f"home_id={self.home_id}",
            "-c",
            "gitlab.healthcheck.interval=1s",
            "-c",
            "gitlab.healthcheck.start_period=60s",
            "-c",
            f"gitlab.health_timeout={HEALTH_TIMEOUT}",
            "-c",
            f"ssh_ports.first={ssh_first}",
            "-c",
            f"ssh_ports.last={ssh_first + 400}",
            "-c",
            f"http_ports.first={ssh_first + 450}",
            "-c",
            f"http_ports.last={ssh_first + 499}",
            # The backup sidecars run the tools image, built by Girofle on the local base.
            "-c",
            f"tools.base_image={self.images.base}",
            "-c",
            f"tools.image={TOOLS_IMAGE}",
            *schedules,
            *extra,
        )

    @property
    def ca_file(self) -> Path:
        return self.root / "secrets" / "home" / "ca" / "ca.crt"

    def edge(
        self,
        host: str,
        path: str = "/help",
        scheme: str = "https",
        user: str | None = None,
        insecure: bool = False,
    ) -> EdgeAnswer:
        """A request through Traefik's published port on 127.0.0.1, as curl makes it for a
        client that resolves ``host`` there and trusts Girofle's CA."""
        port = self.https_port if scheme == "https" else self.traefik_port
        argv = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code} %{redirect_url}"]
        argv += ["--resolve", f"{host}:{port}:127.0.0.1", "--cacert", str(self.ca_file)]
        argv += ["-k"] if insecure else []
        argv += ["-K", "-", f"{scheme}://{host}:{port}{path}"]
        config = f'user = "{user}"\n' if user else ""  # on stdin, never on the command line
        proc = subprocess.run(argv, input=config, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            return EdgeAnswer(0, proc.stderr.strip(), "")
        body, _, tail = proc.stdout.rpartition("\n")
        status, _, location = tail.partition(" ")
        return EdgeAnswer(int(status), body, location)

    def files(self) -> set[str]:
        """Every path under the home, for 'nothing was created' checks."""
        if not self.root.exists():
            return set()
        return {
            str(p.relative_to(self.root)) for p in self.root.rglob("*") if ".locks" not in p.parts
        }


def remove_home_resources(client: DockerClient, home_id: str) -> None:
    """Remove exactly what one test home created on the engine."""
    containers = client.container.list(all=True, filters=[("label", f"{HOME_LABEL}={home_id}")])
    if containers:
        client.container.remove(containers, force=True, volumes=True)
    for network in client.network.list(filters=[("label", f"{HOME_LABEL}={home_id}")]):
        with contextlib.suppress(DockerException):
            network.remove()


def new_fleet(parent: Path, images: BuiltImages) -> Fleet:
    """A fleet in a new home under ``parent``, set to use the test images."""
    root = parent / unique("home")
    fleet = Fleet(root, session_home_id(), images, free_port())
    fleet.env = {**os.environ, "GIROFLE_HOME": str(root), "GIROFLE_GITLAB_IMAGE": images.standin}
    return fleet


@pytest.fixture
def make_fleet(
    engine: DockerClient, images: BuiltImages, tmp_path: Path
) -> Iterator[Callable[[], Fleet]]:
    made: list[Fleet] = []

    def make() -> Fleet:
        made.append(new_fleet(tmp_path, images))
        return made[-1]

    yield make
    for fleet in made:
        remove_home_resources(engine, fleet.home_id)


@pytest.fixture(scope="module")
def module_fleet(
    engine: DockerClient, images: BuiltImages, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    """One fleet shared by a module's tests that leave it as they found it."""
    fleet = new_fleet(tmp_path_factory.mktemp("module"), images)
    yield fleet
    remove_home_resources(engine, fleet.home_id)


def instance_name(prefix: str = "i") -> str:
    """A name unique on the engine (container names are global to it)."""
    return unique(prefix).replace("_", "-")

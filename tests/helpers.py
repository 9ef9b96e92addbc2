"""Helpers shared by the engine tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from python_on_whales import Container, DockerClient, DockerException

# Every container and network a test creates directly carries TEST_LABEL, whose value
# is the pid of the pytest process that made it; Girofle homes made by tests have ids
# "gtest<pid>-...". At the start of a session, whatever belongs to a pytest process that
# no longer runs is removed: an interrupted run (or a dockerd restart, which brings back
# containers with a restart policy) can leave them holding names and ports. A concurrent
# live session is left alone. The workers of a parallel run (pytest-xdist, whose command
# lines do not say pytest) are one session: their controller's.
TEST_LABEL = "io.girofle.test"
TEST_HOME_PREFIX = "gtest"
HOME_LABEL = "io.girofle.home"
SESSION = str(os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid())


def owner_is_gone(owner: str) -> bool:
    """Whether the pytest process that created a resource has ended."""
    pid = owner.removeprefix(TEST_HOME_PREFIX).split("-", 1)[0]
    try:
        return b"pytest" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return True


def session_home_id() -> str:
    """A Girofle home id that marks the home as this test session's."""
    return f"{TEST_HOME_PREFIX}{SESSION}-{secrets.token_hex(3)}"


def remove_leftovers(client: DockerClient) -> None:
    """Remove containers and networks left by earlier test sessions that have ended."""
    stale = []
    for label in (TEST_LABEL, HOME_LABEL):
        for container in client.container.list(all=True, filters=[("label", label)]):
            owner = container.config.labels.get(label, "")
            if label == HOME_LABEL and not owner.startswith(TEST_HOME_PREFIX):
                continue  # a real Girofle home: never touched by tests
            if owner_is_gone(owner):
                stale.append(container)
    if stale:
        client.container.remove(stale, force=True, volumes=True)
    for label in (TEST_LABEL, HOME_LABEL):
        for network in client.network.list(filters=[("label", label)]):
            owner = network.labels.get(label, "")
            if label == HOME_LABEL and not owner.startswith(TEST_HOME_PREFIX):
                continue
            if owner_is_gone(owner):
                with contextlib.suppress(DockerException):
                    network.remove()


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class HttpAnswer:
    status: int
    body: str
    headers: dict[str, str]


def http(
    url: str,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    method: str | None = None,
) -> HttpAnswer:
    """One HTTP request that returns the status instead of raising on 4xx/5xx."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return HttpAnswer(response.status, response.read().decode(), dict(response.headers))
    except urllib.error.HTTPError as err:
        return HttpAnswer(err.code, err.read().decode(), dict(err.headers))


def published_port(container: Container, port: int) -> int:
    container.reload()
    binding = container.network_settings.ports[f"{port}/tcp"]
    assert binding, f"{container.name}: port {port} is not published"
    return int(binding[0]["HostPort"])


def wait_health(
    client: DockerClient, container: Container, wanted: str, timeout: float = 60
) -> str:
    """Follow the engine's health_status events until ``wanted`` (or timeout); return the last."""
    since = time.time() - 1
    container.reload()
    state = container.state.health.status if container.state.health else None
    if state == wanted:
        return state
    # docker-py's stream, closed with its client: a `docker system events` process (what
    # python-on-whales runs) would outlive a wait that ends early.
    api = docker.from_env(timeout=int(timeout) + 10)
    try:
        events = api.events(  # type: ignore[call-overload]
            since=f"{since:.6f}",
            until=f"{since + timeout + 1:.6f}",
            decode=True,
            filters={"container": container.id, "event": "health_status"},
        )
        for event in events:
            state = str(event.get("Action", "")).split(": ", 1)[-1]
            if state == wanted:
                break
    finally:
        api.close()
    container.reload()
    return container.state.health.status if container.state.health else "none"


def exec_text(container: Container, *command: str, env: dict[str, str] | None = None) -> str:
    """Run a command in a container; return stdout (raises on non-zero)."""
    return str(container.execute(list(command), envs=env or {}))


def exec_rc(
    container: Container, *command: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in a container through the CLI, keeping its exit code and output."""
    argv = ["docker", "exec", "-i"]
    for key, value in (env or {}).items():
        argv += ["-e", f"{key}={value}"]
    argv += [container.id, *command]
    return subprocess.run(argv, input=stdin or "", capture_output=True, text=True, check=False)


@contextlib.contextmanager
def running(
    client: DockerClient, image: str, labels: dict[str, str], **kwargs: Any
) -> Iterator[Container]:
    """A detached container that is removed, with its anonymous volumes, afterwards."""
    container = client.run(image, detach=True, labels=labels, name=unique("gtest"), **kwargs)
    assert isinstance(container, Container)
    try:
        yield container
    finally:
        client.container.remove(container, force=True, volumes=True)


def wait_until(predicate: Any, timeout: float, interval: float = 0.2) -> bool:
    """Check a real condition until it holds or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            if predicate():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git with a fixed identity; return its stdout (raises on failure)."""
    return subprocess.run(
        ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@dataclass(frozen=True)
class SshClient:
    """A git client over SSH with its own key and known_hosts, as an operator's laptop."""

    key: Path
    known_hosts: Path

    @classmethod
    def make(cls, directory: Path) -> SshClient:
        directory.mkdir(parents=True, exist_ok=True)
        key = directory / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        return cls(key, directory / "known_hosts")

    @property
    def public_key(self) -> str:
        return self.key.with_suffix(".pub").read_text().strip()

    def clone(
        self, port: int, path: str, target: Path, alias: str, learn: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """git clone ssh://git@127.0.0.1:PORT/PATH; ``learn`` records the host key the first
        time, otherwise an unknown or changed key fails. Keys are filed under ``alias``, so
        that the entry follows the instance whatever port it is published on."""
        ssh = (
            f"ssh -i {self.key} -o IdentitiesOnly=yes -o UserKnownHostsFile={self.known_hosts} "
            f"-o HostKeyAlias={alias} "
            f"-o StrictHostKeyChecking={'accept-new' if learn else 'yes'} -o BatchMode=yes"
        )
        return subprocess.run(
            ["git", "clone", "-q", f"ssh://git@127.0.0.1:{port}/{path}", str(target)],
            env={**os.environ, "GIT_SSH_COMMAND": ssh},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

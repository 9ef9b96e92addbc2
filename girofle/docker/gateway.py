"""The one way to the Docker engine: every compose, exec, inspect and event call is here.

One client for the engine's API (docker-py, one connection per process); the docker CLI
for what only it does (Compose, `exec`, `cp`). Commands are argv lists (never shell
strings), logged at debug level, and failures become ``DockerError`` carrying the command,
its exit code and stderr.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import docker.errors
import docker.types
import requests
import urllib3.exceptions

from girofle.errors import DockerError, EngineUnavailableError, HealthTimeoutError

log = logging.getLogger("girofle.docker")

PING_TIMEOUT = 10
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"


@dataclass(frozen=True)
class PortBinding:
    """A host port a container claims: its Compose project ('' if none), address, port."""

    project: str
    address: str  # 0.0.0.0 for every address
    port: int


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def last_line(stderr: str, stdout: str = "", default: str = "no output") -> str:
    """The last line a failed command printed: its stderr's, else its stdout's."""
    lines = (stderr.strip() or stdout.strip()).splitlines()
    return lines[-1] if lines else default


def shown_command(argv: Sequence[str]) -> str:
    """A command as one short line for messages: a script argument shows as <script>."""
    shown = " ".join("<script>" if "\n" in arg else arg for arg in argv)
    return shown if len(shown) <= 200 else shown[:197] + "..."


def run_cli(argv: list[str], what: str, timeout: float | None = None) -> str:
    """Run a docker CLI command; its stdout, or a DockerError naming ``what`` failed."""
    log.debug("run %s", " ".join(argv))
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DockerError(f"{what}: no answer after {timeout:.0f} s", argv) from None
    except FileNotFoundError:
        raise DockerError(f"{what} failed: the docker CLI is not installed", argv) from None
    if proc.returncode != 0:
        message = last_line(proc.stderr, default=f"exit code {proc.returncode}")
        raise DockerError(f"{what} failed: {message}", argv, proc.returncode, proc.stderr)
    return proc.stdout


def unpack_copy(tar: tarfile.TarFile, top: str, destination: Path) -> None:
    """Write a streamed archive of ``top`` (a file, or a directory and what it holds) as
    ``destination``: regular files and directories only (no link, device or special bit),
    owned by Girofle, nothing outside ``destination``."""
    for member in tar:
        parts = PurePosixPath(member.name).parts
        if not parts or parts[0] != top or ".." in parts or member.name.startswith("/"):
            raise tarfile.TarError(f"unexpected entry {member.name!r}")
        place = destination.joinpath(*parts[1:])
        if member.isdir():
            place.mkdir(mode=0o700, exist_ok=True)
        elif member.isfile():
            source = tar.extractfile(member)
            assert source is not None  # a regular file
            with source, place.open("wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            place.chmod(member.mode & 0o755)
        else:
            raise tarfile.TarError(f"{member.name!r} is not a regular file or a directory")


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (a streamed API answer)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, b"")
            if not chunk:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]  # a view: nothing copied
        return size


@dataclass(frozen=True)
class HealthReport:
    """Where a container's health stands, with the last lines of its health log."""

    status: str
    log: list[str]


@dataclass(frozen=True)
class ContainerInfo:
    """What Girofle reads of a container: from the engine's listing, or from an inspect,
    which alone says when it started and how its health stands."""

    id: str
    name: str
    running: bool
    labels: dict[str, str]
    ports: tuple[tuple[str, int], ...] = ()  # published: (host address, host port)
    started_at: str | None = None
    health: HealthReport | None = None  # None: no healthcheck

    @classmethod
    def listed(cls, summary: dict[str, Any]) -> ContainerInfo:
        """From an entry of the engine's container listing."""
        ports = tuple(
            (str(port.get("IP") or "0.0.0.0"), int(port["PublicPort"]))
            for port in summary.get("Ports") or []
            if port.get("PublicPort")
        )
        return cls(
            str(summary["Id"]),
            str((summary.get("Names") or ["/"])[0]).lstrip("/"),
            summary.get("State") == "running",
            dict(summary.get("Labels") or {}),
            ports,
        )

    @classmethod
    def inspected(cls, answer: dict[str, Any]) -> ContainerInfo:
        """From the engine's inspect of a container."""
        state = answer.get("State") or {}
        health = state.get("Health")
        report = None
        if health is not None:
            report = HealthReport(
                str(health.get("Status", "")),
                [
                    f"{entry.get('End')}: exit {entry.get('ExitCode')}: "
                    f"{str(entry.get('Output') or '').strip()[:200]}"
                    for entry in (health.get("Log") or [])[-3:]
                ],
            )
        running = bool(state.get("Running"))
        return cls(
            str(answer["Id"]),
            str(answer.get("Name", "")).lstrip("/"),
            running,
            dict((answer.get("Config") or {}).get("Labels") or {}),
            started_at=str(state.get("StartedAt")) if running else None,
            health=report,
        )


class Engine:
    """A Docker engine, reached through its API (docker-py) and the docker CLI."""

    def __init__(self) -> None:
        self._api_client: docker.DockerClient | None = None
        self._api_lock = threading.Lock()  # fleet commands share the engine across threads

    # --- reachability -------------------------------------------------------------

    def ping(self) -> str:
        """The engine's version; EngineUnavailableError (one line) when it does not answer."""
        try:
            version: str = self._connected().version()["Version"]
        except (docker.errors.DockerException, OSError) as err:
            raise EngineUnavailableError(
                f"the Docker engine at {engine_address()} does not answer "
                f"({type(err).__name__}); start it or set DOCKER_HOST"
            ) from None
        return version

    def compose_version(self) -> str:
        """Compose's version; a DockerError when `docker compose` is not Compose v2."""
        version = run_cli(["docker", "compose", "version"], "docker compose version")
        if "v2." not in version and " 2." not in version:
            raise DockerError(f"Compose v2 is required, found: {version.strip()}")
        return version.strip()

    # --- compose ------------------------------------------------------------------

    def _compose(self, stack_dir: Path, project: str, *args: str) -> None:
        argv = ["docker", "compose", "--file", str(stack_dir / "docker-compose.yml")]
        argv += ["--project-name", project, "--project-directory", str(stack_dir), *args]
        run_cli(argv, f"compose {args[0]} of {project}")

    def compose_up(self, stack_dir: Path, project: str, force_recreate: bool = False) -> None:
        """Create or update a stack's containers (recreating only what changed, or all of
        them with ``force_recreate``)."""
        # Girofle owns the project: a service the stack no longer has (a backup sidecar
        # after `girofle cron install`) goes.
        recreate = ["--force-recreate"] if force_recreate else []
        self._compose(stack_dir, project, "up", "--detach", "--remove-orphans", *recreate)

    def compose_create(self, stack_dir: Path, project: str) -> None:
        """Create a stack's networks and containers without starting them: from then on the
        engine itself shows the ports and subnet they claim, to every home."""
        self._compose(stack_dir, project, "create", "--no-recreate")

    def compose_down(self, stack_dir: Path, project: str) -> None:
        """Remove a stack's containers and networks (bind-mounted data stays)."""
        self._compose(stack_dir, project, "down")

    # --- containers ---------------------------------------------------------------

    def containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        """Every container (running or not) carrying all these labels, in one query."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        with self._api("listing containers") as api:
            listed = api.api.containers(all=True, filters=filters)
        return [ContainerInfo.listed(summary) for summary in listed]

    def container(self, name: str) -> ContainerInfo | None:
        """A container by name or ID, inspected; None when there is none."""
        with self._api(f"inspecting {name}") as api:
            try:
                return ContainerInfo.inspected(api.api.inspect_container(name))
            except docker.errors.NotFound:
                return None

    def stop(self, containers: Sequence[ContainerInfo], grace: int) -> None:
        """Stop containers, giving each ``grace`` seconds after SIGTERM before SIGKILL.

        GitLab's init traps SIGTERM and stops its services, PostgreSQL included; a SIGKILL
        before that ends leaves a database that must recover (reference A9).
        """
        for container in containers:
            self._with_api(f"stopping {container.name}", "stop", container.id, grace)

    def restart(self, container: ContainerInfo, grace: int) -> None:
        """Restart a container with the same grace as stop."""
        self._with_api(f"restarting {container.name}", "restart", container.id, grace)

    def _with_api(self, what: str, action: str, container_id: str, grace: int) -> None:
        log.debug("%s (grace %d s)", what, grace)
        try:
            # docker-py waits the grace on top of its own timeout for these calls.
            getattr(self._connected().api, action)(container_id, timeout=grace)
        except (docker.errors.DockerException, OSError) as err:
            raise DockerError(f"{what} failed: {err}") from None

    def exec(
        self,
        container: str,
        argv: Sequence[str],
        stdin: str | None = None,
        timeout: float | None = 3600,
        env: dict[str, str] | None = None,
    ) -> str:
        """Run argv in a container; stdin carries secrets so that `ps` never shows them.

        ``timeout=None`` waits as long as it takes. Note that killing the `docker exec`
        client (on a timeout, or Girofle's own death) leaves the process in the container
        running (moby/moby#9098).
        """
        out = self.exec_bytes(container, argv, (stdin or "").encode(), timeout, env)
        # Universal newlines, as a text-mode pipe reads them.
        return out.decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")

    def exec_bytes(
        self,
        container: str,
        argv: Sequence[str],
        stdin: bytes = b"",
        timeout: float | None = 3600,
        env: dict[str, str] | None = None,
    ) -> bytes:
        """``exec``, for a command whose output is not text (an archive it streams)."""
        flags = [f"--env={key}={value}" for key, value in (env or {}).items()]
        command = ["docker", "exec", "-i", *flags, container, *argv]
        shown = shown_command(argv)
        log.debug("run docker exec %s %s", container, shown)
        try:
            proc = subprocess.run(
                command, input=stdin, capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise DockerError(
                f"gave up waiting for `{shown}` in {container} after {timeout:.0f} s "
                "(it may still run there)",
                command,
            ) from None
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace")
            stdout = proc.stdout[-4096:].decode(errors="replace")
            raise DockerError(
                f"`{shown}` failed in {container}: {last_line(stderr, stdout)}",
                command,
                proc.returncode,
                stderr,
            )
        return proc.stdout

    def network_subnets(self) -> list[IPv4Network]:
        """Fact: the IPv4 subnets of every network the engine has, from one API call."""
        return [subnet for _, subnet in self.networks()]

    def networks(self) -> list[tuple[str, IPv4Network]]:
        """Fact: every network on the engine with each of its IPv4 subnets (name, subnet)."""
        with self._api("listing networks") as api:
            networks = api.api.networks()
        found = []
        for network in networks:
            for config in (network.get("IPAM") or {}).get("Config") or []:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    found.append((str(network.get("Name", "")), IPv4Network(config["Subnet"])))
        return found

    def port_bindings(self) -> list[PortBinding]:
        """Fact: every host port any container on the engine binds or will bind when started.

        A running container's bindings are in the one listing; a stopped or created one
        keeps its claim in HostConfig.PortBindings, which only an inspect shows, so only
        those are inspected (new-stack asks this of engines with hundreds of containers).
        """
        bindings = []
        with self._api("listing containers") as api:
            for summary in api.api.containers(all=True):
                project = (summary.get("Labels") or {}).get(COMPOSE_PROJECT_LABEL, "")
                if summary.get("State") == "running":
                    published = [
                        (port.get("IP"), port.get("PublicPort"))
                        for port in summary.get("Ports") or []
                        if port.get("PublicPort")
                    ]
                else:
                    try:
                        inspected = api.api.inspect_container(summary["Id"])
                    except docker.errors.NotFound:
                        continue  # removed between the two calls
                    wanted = (inspected.get("HostConfig") or {}).get("PortBindings") or {}
                    published = [
                        (binding.get("HostIp"), binding.get("HostPort"))
                        for host_side in wanted.values()
                        for binding in host_side or []
                    ]
                for address, port in published:
                    with contextlib.suppress(ValueError, TypeError):
                        bindings.append(PortBinding(project, address or "0.0.0.0", int(port)))
        return bindings

    def _connected(self) -> docker.DockerClient:
        """The process's one docker-py client: made once (each one made asks the engine its
        API version first), kept for every later call."""
        with self._api_lock:
            if self._api_client is None:
                self._api_client = docker.from_env(timeout=PING_TIMEOUT)
            return self._api_client

    @contextlib.contextmanager
    def _api(self, what: str) -> Iterator[docker.DockerClient]:
        """The docker-py client for one batch of API calls; a refusal (DockerError) or an
        unreachable engine (EngineUnavailableError) is one line."""
        try:
            yield self._connected()
        except docker.errors.APIError as err:
            reason = err.explanation or str(err)
            raise DockerError(f"{what} failed: {reason}") from None
        except (docker.errors.DockerException, OSError) as err:
            raise EngineUnavailableError(f"{what} failed: {err}") from None

    def start_project(self, project: str) -> None:
        """Start every container of a Compose project that is not running."""
        with self._api(f"starting {project}") as api:
            for summary in api.api.containers(
                all=True, filters={"label": f"{COMPOSE_PROJECT_LABEL}={project}"}
            ):
                if summary.get("State") != "running":
                    log.debug("start %s", summary["Id"][:12])
                    api.api.start(summary["Id"])

    def create_internal_network(self, name: str, labels: dict[str, str]) -> None:
        """A bridge network with no route out (Docker's --internal), and so none in."""
        with self._api(f"creating network {name}") as api:
            api.networks.create(name, driver="bridge", internal=True, labels=labels)

    def create_overlay_network(self, name: str, subnet: str, labels: dict[str, str]) -> None:
        """A swarm-wide overlay network on ``subnet`` (which it claims on every node)."""
        with self._api(f"creating network {name}") as api:
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
            api.networks.create(
                name, driver="overlay", attachable=False, ipam=ipam, labels=labels, scope="swarm"
            )

    def remove_network(self, name: str) -> None:
        """Remove a network, if it is there."""
        with self._api(f"removing network {name}") as api:
            for network in api.networks.list(names=[name]):
                if network.name == name:
                    network.remove()

    def has_image(self, image: str) -> bool:
        """Whether the engine has ``image`` already (Girofle never pulls in the middle of
        a change)."""
        with self._api(f"image inspect {image}") as api:
            try:
                api.api.inspect_image(image)  # type: ignore[no-untyped-call]
            except docker.errors.ImageNotFound:
                return False
        return True

    def network_subnets_of(self, name: str) -> tuple[str, ...]:
        """The subnets of one network, or none when it does not exist."""
        with self._api(f"inspecting network {name}") as api:
            try:
                inspected = api.api.inspect_network(name)
            except docker.errors.NotFound:
                return ()
        configs = (inspected.get("IPAM") or {}).get("Config") or []
        return tuple(str(c["Subnet"]) for c in configs if c.get("Subnet"))

    def copy_out(self, container: str, path: str, destination: Path) -> None:
        """Copy a file or a directory out of a container to ``destination``, as `docker cp`
        does, through the engine's API: the engine reads it as the container's root, so
        Girofle needs no right on the volume's files on the host. A full local disk is an
        OSError, as for any local write."""
        log.debug("cp %s:%s %s", container, path, destination)
        what = f"copying {path} out of {container}"
        with self._api(what) as api:
            chunks, _ = api.api.get_archive(container, path, chunk_size=1 << 20)
        try:
            reader = _ChunkReader(chunks)
            with tarfile.open(fileobj=reader, mode="r|", bufsize=1 << 20) as tar:
                unpack_copy(tar, PurePosixPath(path).name, destination)
        except (requests.RequestException, urllib3.exceptions.HTTPError, tarfile.TarError) as err:
            raise DockerError(f"{what} failed: {err}") from None

    def copy_in(self, source: Path, container: str, path: str) -> None:
        """Copy a file into a container (`docker cp`): it lands owned by the container's
        root, with the source's mode."""
        argv = ["docker", "cp", str(source), f"{container}:{path}"]
        run_cli(argv, f"copying {source.name} into {container}")

    def run_detached(
        self,
        name: str,
        image: str,
        *,
        hostname: str,
        network: str,
        labels: dict[str, str],
        env: dict[str, str],
        healthcheck: dict[str, Any] | None,
        shm_size: str | None,
    ) -> None:
        """Create and start a container on one network (`docker run -d`)."""
        log.debug("run %s (%s) on %s", name, image, network)
        with self._api(f"starting {name}") as api:
            api.containers.run(
                image,
                detach=True,
                name=name,
                hostname=hostname,
                network=network,
                labels=labels,
                environment=env,
                healthcheck=healthcheck,
                shm_size=shm_size,
            )

    def remove_container(self, name: str) -> None:
        """Remove a container, running or not, with its anonymous volumes, if it is there."""
        with self._api(f"removing {name}") as api, contextlib.suppress(docker.errors.NotFound):
            api.api.remove_container(name, v=True, force=True)

    def put_files(
        self, container: str, directory: str, files: dict[str, tuple[bytes, int]]
    ) -> None:
        """Write small files (relative path -> content, mode) into a container's directory
        in one request, owned by the container's root, parent directories made 0755."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            made: set[str] = set()
            for relative, (content, mode) in sorted(files.items()):
                parts = relative.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    parent = "/".join(parts[:depth])
                    if parent not in made:
                        entry = tarfile.TarInfo(parent)
                        entry.type, entry.mode = tarfile.DIRTYPE, 0o755
                        tar.addfile(entry)
                        made.add(parent)
                info = tarfile.TarInfo(relative)
                info.size, info.mode = len(content), mode
                tar.addfile(info, io.BytesIO(content))
        with self._api(f"writing into {container}:{directory}") as api:
            api.api.put_archive(container, directory, buffer.getvalue())

    def started_at(self, name: str) -> str | None:
        """When a running container last started; None when it is not running (or gone)."""
        container = self.container(name)
        return None if container is None else container.started_at

    def wait_restart(self, name: str, before: str | None, timeout: float) -> bool:
        """Whether ``name`` restarts (runs again, started after ``before``) within
        ``timeout``: polls its state, the engine's own record of it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.started_at(name)
            if now is not None and now != before:
                return True
            time.sleep(0.2)
        return False

    def stopping(self, name: str) -> bool:
        """Whether the engine is stopping ``name`` (or restarting it): it signalled the
        container after its last start. A restart asked for by a killed client goes on in
        the engine, and the container reads as running, with the same start, until it ends."""
        container = self.container(name)
        if container is None or container.started_at is None:
            return False
        started = dt.datetime.fromisoformat(container.started_at)
        with self._api(f"reading {name}'s events") as api:
            # Whole seconds are enough: the last of start and kill decides, not the window.
            events = api.events(  # type: ignore[call-overload]
                since=int(started.timestamp()),
                until=f"{time.time():.6f}",  # now: replay, do not follow
                decode=True,
                filters={"container": container.id, "event": ["start", "kill"]},
            )
            last = max(events, key=lambda event: int(event.get("timeNano", 0)), default=None)
        return last is not None and last.get("Action") == "kill"

    def wait_settled(self, name: str, timeout: float) -> bool:
        """Wait until the engine no longer stops or restarts ``name``; whether it settled
        within ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.stopping(name):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def last_log_line(self, name: str) -> str:
        """The container's last two lines of output (its error, after a crash: GitLab's
        upgrade-check ends on a pointer to its docs), or a pointer to its logs."""
        try:
            with self._api(f"reading {name}'s logs") as api:
                text = api.api.logs(name, tail=20).decode(errors="replace")
        except (EngineUnavailableError, docker.errors.DockerException):
            return f"see `docker logs {name}`"
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " ".join(lines[-2:])[:400] if lines else f"see `docker logs {name}`"

    # --- health -------------------------------------------------------------------

    def health(self, name: str) -> HealthReport:
        container = self.container(name)
        if container is None:
            return HealthReport("missing", [])
        return container.health or HealthReport("none", [])

    def wait_healthy(
        self,
        name: str,
        timeout: float,
        on_change: Callable[[str, float], None] = lambda status, elapsed: None,
        stop_on_crash: bool = False,
    ) -> None:
        """Follow the engine's health_status events until ``name`` is healthy.

        Raises HealthTimeoutError with the health log's last lines when ``timeout`` passes
        first, or at once if the container stops (or, with ``stop_on_crash``, if its main
        process exits non-zero even though the restart policy starts it again).
        """
        started = time.monotonic()
        # Subscribe from just before the first look, so that no change between the two is
        # missed and no event from before (a `die` of an earlier stop) is replayed.
        since = time.time()
        report = self.health(name)
        on_change(report.status, 0.0)
        if report.status == "healthy":
            return
        deadline = since + timeout
        api = docker.from_env(timeout=int(max(timeout, PING_TIMEOUT)) + 5)
        try:
            # The engine takes sub-second timestamps; docker-py passes them through, though
            # its stubs only admit whole seconds.
            events = api.events(  # type: ignore[call-overload]
                since=f"{since:.6f}",
                until=f"{deadline:.6f}",
                decode=True,
                filters={"container": name, "event": ["health_status", "die"]},
            )
            for event in events:
                action = str(event.get("Action", ""))
                if action == "die":
                    code = str(event.get("Actor", {}).get("Attributes", {}).get("exitCode", "0"))
                    if stop_on_crash and code != "0":
                        raise HealthTimeoutError(
                            f"{name} exited with code {code} while starting: "
                            f"{self.last_log_line(name)}"
                        )
                    container = self.container(name)
                    if container is None or not container.running:
                        break  # it stopped: waiting longer cannot help
                    continue
                status = action.split(": ", 1)[-1]
                on_change(status, time.monotonic() - started)
                if status == "healthy":
                    return
        finally:
            api.close()
        report = self.health(name)
        if report.status == "healthy":
            return
        tail = "; ".join(report.log) or "no health check has run yet"
        raise HealthTimeoutError(
            f"{name} is not healthy after {time.monotonic() - started:.0f} s "
            f"(status {report.status}); last health checks: {tail}"
        )

"""The one way to the Docker engine: every compose, exec, inspect and event call is here.

Commands are argv lists (never shell strings), logged at debug level, and failures become
``DockerError`` carrying the command, its exit code and stderr.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Literal

import docker
import docker.errors
import docker.types
from python_on_whales import Container, DockerClient, DockerException

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


def docker_error(err: DockerException, what: str) -> DockerError:
    stderr = (err.stderr or "").strip()
    last = stderr.splitlines()[-1] if stderr else f"exit code {err.return_code}"
    return DockerError(f"{what} failed: {last}", list(err.docker_command), err.return_code, stderr)


@dataclass(frozen=True)
class HealthReport:
    """Where a container's health stands, with the last lines of its health log."""

    status: str
    log: list[str]


class Engine:
    """A Docker engine, reached through python-on-whales, docker-py and the docker CLI."""

    def __init__(self) -> None:
        self.client = DockerClient()

    # --- reachability -------------------------------------------------------------

    def ping(self) -> str:
        """The engine's version; EngineUnavailableError (one line) when it does not answer."""
        try:
            api = docker.from_env(timeout=PING_TIMEOUT)
            try:
                version: str = api.version()["Version"]
            finally:
                api.close()
        except (docker.errors.DockerException, OSError) as err:
            raise EngineUnavailableError(
                f"the Docker engine at {engine_address()} does not answer "
                f"({type(err).__name__}); start it or set DOCKER_HOST"
            ) from None
        return version

    def compose_version(self) -> str:
        """Compose's version; a DockerError when `docker compose` is not Compose v2."""
        try:
            version = str(self.client.compose.version())
        except DockerException as err:
            raise docker_error(err, "docker compose version") from None
        if "v2." not in version and " 2." not in version:
            raise DockerError(f"Compose v2 is required, found: {version.strip()}")
        return version.strip()

    # --- compose ------------------------------------------------------------------

    def compose(self, stack_dir: Path, project: str) -> DockerClient:
        return DockerClient(
            compose_files=[stack_dir / "docker-compose.yml"],
            compose_project_name=project,
            compose_project_directory=stack_dir,
        )

    def compose_up(self, stack_dir: Path, project: str, force_recreate: bool = False) -> None:
        """Create or update a stack's containers (recreating only what changed, or all of
        them with ``force_recreate``)."""
        log.debug("compose up %s (%s)", project, stack_dir)
        try:
            # Girofle owns the project: a service the stack no longer has (a backup sidecar
            # after `girofle cron install`) goes.
            self.compose(stack_dir, project).compose.up(
                detach=True, quiet=True, remove_orphans=True, force_recreate=force_recreate
            )
        except DockerException as err:
            raise docker_error(err, f"compose up of {project}") from None

    def compose_create(self, stack_dir: Path, project: str) -> None:
        """Create a stack's networks and containers without starting them: from then on the
        engine itself shows the ports and subnet they claim, to every home."""
        log.debug("compose create %s (%s)", project, stack_dir)
        try:
            self.compose(stack_dir, project).compose.create(no_recreate=True)
        except DockerException as err:
            raise docker_error(err, f"compose create of {project}") from None

    def compose_down(self, stack_dir: Path, project: str) -> None:
        """Remove a stack's containers and networks (bind-mounted data stays)."""
        log.debug("compose down %s", project)
        try:
            self.compose(stack_dir, project).compose.down(quiet=True)
        except DockerException as err:
            raise docker_error(err, f"compose down of {project}") from None

    # --- containers ---------------------------------------------------------------

    def containers(self, labels: dict[str, str]) -> list[Container]:
        """Every container (running or not) carrying all these labels, in one query."""
        filters: list[tuple[Literal["label"], str]] = [
            ("label", f"{k}={v}") for k, v in labels.items()
        ]
        try:
            return list(self.client.container.list(all=True, filters=filters))
        except DockerException as err:
            raise docker_error(err, "listing containers") from None

    def container(self, name: str) -> Container | None:
        try:
            return self.client.container.inspect(name)
        except DockerException:
            return None

    def start(self, container: Container) -> None:
        try:
            self.client.container.start(container)
        except DockerException as err:
            raise docker_error(err, f"starting {container.name}") from None

    def stop(self, containers: Sequence[Container], grace: int) -> None:
        """Stop containers, giving each ``grace`` seconds after SIGTERM before SIGKILL.

        GitLab's init traps SIGTERM and stops its services, PostgreSQL included; a SIGKILL
        before that ends leaves a database that must recover (reference A9). docker-py, not
        python-on-whales, whose stop(time=<int>) drops the value.
        """
        for container in containers:
            self._with_api(f"stopping {container.name}", "stop", container.id, grace)

    def restart(self, container: Container, grace: int) -> None:
        """Restart a container with the same grace as stop."""
        self._with_api(f"restarting {container.name}", "restart", container.id, grace)

    def _with_api(self, what: str, action: str, container_id: str, grace: int) -> None:
        log.debug("%s (grace %d s)", what, grace)
        try:
            # docker-py waits the grace on top of its own timeout for these calls.
            api = docker.from_env(timeout=PING_TIMEOUT)
            try:
                getattr(api.api, action)(container_id, timeout=grace)
            finally:
                api.close()
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
        flags = [f"--env={key}={value}" for key, value in (env or {}).items()]
        command = ["docker", "exec", "-i", *flags, container, *argv]
        log.debug("run %s", " ".join(command))
        try:
            proc = subprocess.run(
                command,
                input=stdin or "",
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DockerError(
                f"gave up waiting for `{' '.join(argv)}` in {container} after {timeout:.0f} s "
                "(it may still run there)",
                command,
            ) from None
        if proc.returncode != 0:
            raise DockerError(
                f"`{' '.join(argv)}` failed in {container}: {last_line(proc.stderr, proc.stdout)}",
                command,
                proc.returncode,
                proc.stderr,
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

    @contextlib.contextmanager
    def _api(self, what: str) -> Iterator[docker.DockerClient]:
        """A docker-py client for one batch of API calls; an unreachable engine is one line."""
        try:
            api = docker.from_env(timeout=PING_TIMEOUT)
        except (docker.errors.DockerException, OSError) as err:
            raise EngineUnavailableError(f"{what} failed: {err}") from None
        try:
            yield api
        except (docker.errors.DockerException, OSError) as err:
            raise EngineUnavailableError(f"{what} failed: {err}") from None
        finally:
            api.close()

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
        try:
            return bool(self.client.image.exists(image))
        except DockerException as err:
            raise docker_error(err, f"image inspect {image}") from None

    def network_subnets_of(self, name: str) -> tuple[str, ...]:
        """The subnets of one network, or none when it does not exist."""
        try:
            inspected = self.client.network.inspect(name)
        except DockerException:
            return ()
        return tuple(str(c["Subnet"]) for c in (inspected.ipam.config or []) if c.get("Subnet"))

    def copy_out(self, container: str, path: str, destination: Path) -> None:
        """Copy a file out of a container (`docker cp`): the engine reads it as the
        container's root, so Girofle needs no right on the volume's files on the host."""
        log.debug("cp %s:%s %s", container, path, destination)
        try:
            self.client.copy((container, path), destination)
        except DockerException as err:
            raise docker_error(err, f"copying {path} out of {container}") from None

    def copy_in(self, source: Path, container: str, path: str) -> None:
        """Copy a file into a container (`docker cp`): it lands owned by the container's
        root, with the source's mode."""
        log.debug("cp %s %s:%s", source, container, path)
        try:
            self.client.copy(source, (container, path))
        except DockerException as err:
            raise docker_error(err, f"copying {source.name} into {container}") from None

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
        if container is None or not container.state.running:
            return None
        return str(container.state.started_at)

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
        if container is None or not container.state.running:
            return False
        started = container.state.started_at
        assert started is not None
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
            text = str(self.client.container.logs(name, tail=20))
        except DockerException:
            return f"see `docker logs {name}`"
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " ".join(lines[-2:])[:400] if lines else f"see `docker logs {name}`"

    # --- health -------------------------------------------------------------------

    def health(self, name: str) -> HealthReport:
        container = self.container(name)
        if container is None:
            return HealthReport("missing", [])
        health = container.state.health
        if health is None:
            return HealthReport("none", [])
        lines = [
            f"{entry.end}: exit {entry.exit_code}: {(entry.output or '').strip()[:200]}"
            for entry in (health.log or [])[-3:]
        ]
        return HealthReport(str(health.status), lines)

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
                    if container is None or not container.state.running:
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

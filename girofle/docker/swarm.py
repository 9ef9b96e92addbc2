"""The swarm half of the Docker gateway: nodes, stacks, services and their tasks, configs,
and one-shot jobs, through a manager's API (docker-py) and the docker CLI.

Images are always named by their ID: no registry may be reachable, and a tag would make
every node try to pull it first (and the CLI try to resolve its digest) before falling
back to what it has; an ID is what each node must already hold.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.types import (
    ConfigReference,
    ContainerSpec,
    Mount,
    Placement,
    RestartPolicy,
    SecretReference,
    ServiceMode,
    TaskTemplate,
)

from girofle.docker.gateway import last_line
from girofle.errors import DockerError, EngineUnavailableError, HealthTimeoutError

log = logging.getLogger("girofle.docker")

API_TIMEOUT = 30
JOB_LABEL = "io.girofle.job"
LOG_POLL_SECONDS = 2  # how often a job's output is read while it runs, when passed on
DONE = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}
FAILED = {"failed", "rejected"}


@dataclass(frozen=True)
class Node:
    """A swarm node as the manager sees it."""

    id: str
    hostname: str
    role: str  # manager / worker
    state: str  # ready / down / unknown / disconnected
    availability: str  # active / pause / drain
    address: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """One task of a service: where it runs, what the engine wants of it and what it is."""

    id: str
    node_id: str
    desired: str
    state: str
    error: str
    container_id: str
    exit_code: int | None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Task:
        status = raw.get("Status", {})
        container = status.get("ContainerStatus", {}) or {}
        code = container.get("ExitCode")
        return cls(
            id=raw["ID"],
            node_id=raw.get("NodeID", ""),
            desired=raw.get("DesiredState", ""),
            state=status.get("State", ""),
            error=status.get("Err", "") or "",
            container_id=container.get("ContainerID", "") or "",
            exit_code=int(code) if code is not None else None,
        )


@dataclass(frozen=True)
class JobResult:
    exit_code: int
    stdout: str
    stderr: str


class Swarm:
    """A swarm, reached through the manager the docker client points at."""

    @contextlib.contextmanager
    def _api(self, what: str) -> Iterator[docker.APIClient]:
        try:
            client = docker.from_env(timeout=API_TIMEOUT)
        except (docker.errors.DockerException, OSError) as err:
            raise EngineUnavailableError(f"{what} failed: {err}") from None
        try:
            yield client.api
        except docker.errors.APIError as err:
            raise DockerError(f"{what} failed: {err.explanation or err}") from None
        except (docker.errors.DockerException, OSError) as err:
            raise EngineUnavailableError(f"{what} failed: {err}") from None
        finally:
            client.close()

    # --- nodes ------------------------------------------------------------------

    def local_node(self) -> tuple[str, bool]:
        """The ID of the node this client talks to ('' when the engine is in no swarm), and
        whether it is a manager."""
        with self._api("reading the engine's swarm state") as api:
            swarm = api.info().get("Swarm", {})
        return str(swarm.get("NodeID", "")), bool(swarm.get("ControlAvailable", False))

    def nodes(self) -> list[Node]:
        """Every node of the swarm."""
        with self._api("listing the swarm's nodes") as api:
            raw = api.nodes()
        return [
            Node(
                id=n["ID"],
                hostname=n.get("Description", {}).get("Hostname", ""),
                role=n.get("Spec", {}).get("Role", ""),
                state=n.get("Status", {}).get("State", ""),
                availability=n.get("Spec", {}).get("Availability", ""),
                address=n.get("Status", {}).get("Addr", ""),
                labels=dict(n.get("Spec", {}).get("Labels") or {}),
            )
            for n in raw
        ]

    def image_id(self, image: str) -> str:
        """The ID of ``image`` on this engine (a DockerError when it has none)."""
        with self._api(f"looking up image {image}") as api:
            return str(api.inspect_image(image)["Id"])

    # --- stacks and services -----------------------------------------------------

    def stack_deploy(self, stack_file: Path, stack: str) -> None:
        """`docker stack deploy` (images never resolved against a registry)."""
        _cli(
            [
                "docker", "stack", "deploy", "--resolve-image", "never", "--prune",
                "--compose-file", str(stack_file), stack,
            ],
            f"deploying stack {stack}",
            cwd=stack_file.parent,
        )  # fmt: skip

    def stack_rm(self, stack: str) -> None:
        """`docker stack rm`: its services, networks, secrets and configs."""
        _cli(["docker", "stack", "rm", stack], f"removing stack {stack}")

    def services(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Every service carrying all of ``labels``."""
        wanted = [f"{key}={value}" for key, value in labels.items()]
        with self._api("listing services") as api:
            return list(api.services(filters={"label": wanted}))

    def tasks(self, service: str) -> list[Task]:
        """A service's tasks, newest first ([] when the service does not exist)."""
        with self._api(f"listing the tasks of {service}") as api:
            try:
                raw = api.tasks(filters={"service": service})
            except docker.errors.NotFound:
                return []
        raw.sort(key=lambda t: str(t.get("CreatedAt", "")), reverse=True)
        return [Task.of(t) for t in raw if t.get("Spec", {}).get("ContainerSpec") is not None]

    def listing(
        self, labels: dict[str, str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """The engine's answers for the nodes, the services carrying ``labels`` and their
        tasks: one call for each."""
        services = self.services(labels)
        with self._api("listing nodes and tasks") as api:
            nodes = list(api.nodes())
            wanted = {"service": [s["ID"] for s in services]}
            tasks = list(api.tasks(filters=wanted)) if services else []
        return nodes, services, tasks

    def scale(self, service: str, replicas: int) -> None:
        """Set a replicated service's replica count."""
        _cli(
            ["docker", "service", "scale", "--detach", f"{service}={replicas}"],
            f"scaling {service}",
        )

    def force_update(self, service: str) -> None:
        """Replace a service's task (a restart: Swarm stops the old task first)."""
        _cli(
            ["docker", "service", "update", "--detach", "--force", service],
            f"restarting {service}",
        )

    def wait_running(
        self,
        service: str,
        timeout: float,
        on_change: Callable[[str, float], None],
        stop_on_crash: bool = False,
    ) -> Task:
        """Until a task of ``service`` runs, desired running (with a healthcheck, Swarm
        reports `starting` until Docker says healthy, and kills an unhealthy one)."""
        started = time.monotonic()
        said = ""
        while True:
            tasks = self.tasks(service)
            current = next((t for t in tasks if t.desired in ("running", "ready")), None)
            if current is not None and current.state == "running":
                on_change("healthy", time.monotonic() - started)
                return current
            state = current.state if current else "no task"
            if state != said:
                on_change(state, time.monotonic() - started)
                said = state
            # A node refuses a task it cannot run (a bind source or the image missing
            # there): Swarm would only refuse the next one too.
            rejected = [t for t in tasks if t.state == "rejected"]
            failed = [t for t in tasks if t.state in FAILED]
            if rejected or (stop_on_crash and failed):
                why = (rejected or failed)[0].error
                raise HealthTimeoutError(f"{service} cannot start: {why}")
            if time.monotonic() - started > timeout:
                why = next((t.error for t in tasks if t.error), "")
                raise HealthTimeoutError(
                    f"{service} is not running after {timeout:.0f} s (task {state})"
                    + (f": {why}" if why else "")
                )
            time.sleep(0.5)

    def wait_no_task(self, service: str, timeout: float) -> None:
        """Until no task of ``service`` runs (after a scale to 0)."""
        deadline = time.monotonic() + timeout
        while any(t.state in ("running", "starting", "preparing") for t in self.tasks(service)):
            if time.monotonic() > deadline:
                raise DockerError(f"{service} still runs after {timeout:.0f} s")
            time.sleep(0.5)

    # --- configs, secrets, networks ---------------------------------------------

    def create_config_or_secret(
        self, kind: str, name: str, data: bytes, labels: dict[str, str]
    ) -> str:
        """Create a config (``kind`` "config") or secret named ``name``; its ID."""
        with self._api(f"creating {kind} {name}") as api:
            create = api.create_secret if kind == "secret" else api.create_config
            return str(create(name, data, labels=labels)["ID"])

    def remove_config_or_secret(self, kind: str, object_id: str) -> None:
        """Remove a config or secret; one still in use (by another job) stays."""
        with self._api(f"removing {kind} {object_id}") as api:
            remove = api.remove_secret if kind == "secret" else api.remove_config
            with contextlib.suppress(docker.errors.APIError):
                remove(object_id)

    def remove_labelled(self, labels: dict[str, str]) -> None:
        """Remove the configs and secrets carrying ``labels`` (those no service uses)."""
        wanted = [f"{key}={value}" for key, value in labels.items()]
        with self._api("removing configs and secrets") as api:
            for config in api.configs(filters={"label": wanted}):
                with contextlib.suppress(docker.errors.APIError):
                    api.remove_config(config["ID"])
            for secret in api.secrets(filters={"label": wanted}):
                with contextlib.suppress(docker.errors.APIError):
                    api.remove_secret(secret["ID"])

    # --- one-shot jobs ----------------------------------------------------------

    def run_job(
        self,
        node_id: str,
        image_id: str,
        argv: Sequence[str],
        mounts: Sequence[Mount] = (),
        configs: Sequence[ConfigReference] = (),
        timeout: float = 3600,
        labels: dict[str, str] | None = None,
        secrets: Sequence[SecretReference] = (),
        env: dict[str, str] | None = None,
        on_stderr: Callable[[str], None] | None = None,
    ) -> JobResult:
        """Run ``argv`` once on node ``node_id`` as a Swarm job (no SSH, no agent: Swarm
        places it, and its output comes back through the manager); the job is removed
        after. Output is read once it ends; with ``on_stderr``, each line the job writes
        to stderr is also passed on while it runs (read every few seconds)."""
        name = f"girofle-job-{uuid.uuid4().hex[:12]}"
        spec = TaskTemplate(
            ContainerSpec(
                image_id,
                command=list(argv),
                mounts=list(mounts),
                configs=list(configs),
                secrets=list(secrets),
                env=[f"{key}={value}" for key, value in (env or {}).items()],
            ),
            restart_policy=RestartPolicy(condition="none"),
            placement=Placement(constraints=[f"node.id=={node_id}"]),
        )
        log.debug("job %s on %s: %s", name, node_id, " ".join(argv))
        with self._api(f"starting a job on node {node_id}") as api:
            created = api.create_service(
                spec,
                name=name,
                mode=ServiceMode("replicated-job"),
                labels={JOB_LABEL: "true", **(labels or {})},
            )
        service = str(created["ID"])
        logs = ["docker", "service", "logs", "--raw", "--no-trunc", service]
        passed_on, read_at = 0, time.monotonic()
        try:
            deadline = time.monotonic() + timeout
            while True:
                tasks = self.tasks(service)
                if tasks and tasks[0].state in DONE:
                    task = tasks[0]
                    break
                if time.monotonic() > deadline:
                    raise DockerError(
                        f"gave up waiting for `{' '.join(argv)}` on node {node_id} after "
                        f"{timeout:.0f} s (it may still run there)"
                    )
                if on_stderr is not None and time.monotonic() - read_at >= LOG_POLL_SECONDS:
                    lines = _cli(logs, f"reading the output of job {name}")[1].splitlines()
                    for line in lines[passed_on:]:
                        on_stderr(line)
                    passed_on, read_at = len(lines), time.monotonic()
                time.sleep(0.2)
            out = _cli(logs, f"reading the output of job {name}")
            if on_stderr is not None:
                for line in out[1].splitlines()[passed_on:]:
                    on_stderr(line)
            code = task.exit_code if task.exit_code is not None else -1
            if task.state == "rejected":
                raise DockerError(f"node {node_id} rejected a job: {task.error}")
            return JobResult(code, out[0], out[1])
        finally:
            with (
                self._api(f"removing job {name}") as api,
                contextlib.suppress(docker.errors.APIError),
            ):
                api.remove_service(service)


def _cli(argv: list[str], what: str, cwd: Path | None = None) -> tuple[str, str]:
    """Run a docker CLI command; (stdout, stderr). A failure is a DockerError."""
    log.debug("run %s", " ".join(argv))
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd)
    if proc.returncode != 0:
        last = last_line(proc.stderr, proc.stdout)
        raise DockerError(f"{what} failed: {last}", argv, proc.returncode, proc.stderr)
    return proc.stdout, proc.stderr

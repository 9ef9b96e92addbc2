"""The fleet in one engine query: the containers that carry some labels.

This is the hot path of `girofle ls`; it avoids the heavier clients on purpose: one request
on the engine's local socket, or `docker ps` where the CLI knows better (a remote engine,
a context).
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from girofle.docker import engine_api
from girofle.errors import DockerError, EngineUnavailableError
from girofle.labels import HOME_LABEL, INSTANCE_LABEL, NODE_LABEL, ROLE_LABEL

HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")
UNREACHABLE = (
    "Cannot connect to the Docker daemon",
    "Is the docker daemon running",
    "error during connect",
)


class ContainerRow(NamedTuple):
    """What `docker ps` says of one container."""

    name: str
    running: bool
    health: str | None  # healthy / unhealthy / starting, or None without a healthcheck
    labels: dict[str, str]
    node: str | None = None  # the swarm node's hostname (target: swarm)


def _labels(text: str) -> dict[str, str]:
    pairs = (item.partition("=") for item in text.split(",") if item)
    return {key: value for key, _, value in pairs}


def _health(status: str) -> str | None:
    match = HEALTH.search(status)
    return match.group(1).removeprefix("health: ") if match else None


def list_containers(labels: dict[str, str]) -> list[ContainerRow]:
    """Every container, running or not, that carries all of ``labels``."""
    socket_path = engine_api.local_socket()
    if socket_path is None:
        return _list_with_cli(labels)
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    answer = engine_api.get_json(
        socket_path, "/containers/json", {"all": "1", "filters": json.dumps(filters)}
    )
    return [
        ContainerRow(
            raw["Names"][0].lstrip("/"),
            raw.get("State") == "running",
            _health(raw.get("Status", "")),
            dict(raw.get("Labels") or {}),
        )
        for raw in answer
    ]


def gitlab_containers(home_id: str) -> dict[str, ContainerRow]:
    """Every GitLab container of home ``home_id``, by instance, from one query."""
    return {
        row.labels[INSTANCE_LABEL]: row
        for row in list_containers({HOME_LABEL: home_id})
        if row.labels.get(ROLE_LABEL) == "gitlab" and INSTANCE_LABEL in row.labels
    }


# A task on its way to running (Swarm's task states before "running").
STARTING = {"new", "pending", "assigned", "accepted", "preparing", "ready", "starting"}


def swarm_rows(
    nodes: list[dict[str, Any]], services: list[dict[str, Any]], tasks: list[dict[str, Any]]
) -> dict[str, ContainerRow]:
    """Every instance's service and current task as rows, by instance, from the engine's
    answers to GET /nodes, /services and /tasks (of those services): an instance whose node
    is not ready is `node down`. One implementation for the quick and the full `ls`."""
    hosts = {
        str(n["ID"]): (
            str((n.get("Description") or {}).get("Hostname", "")),
            str((n.get("Status") or {}).get("State", "")),
        )
        for n in nodes
    }
    current: dict[str, dict[str, Any]] = {}
    # Newest first: the first that should run counts.
    for task in sorted(tasks, key=lambda t: str(t.get("CreatedAt", "")), reverse=True):
        if task.get("DesiredState") in ("running", "ready"):
            current.setdefault(str(task.get("ServiceID")), task)
    rows: dict[str, ContainerRow] = {}
    for service in services:
        labels = dict(service["Spec"].get("Labels") or {})
        running = current.get(str(service["ID"]))
        placed = labels.get(NODE_LABEL) or (str(running.get("NodeID", "")) if running else "")
        node = hosts.get(placed)
        state = str((running.get("Status") or {}).get("State", "")) if running else ""
        if node is not None and node[1] != "ready":
            health: str | None = "node down"
        elif state == "running":
            health = "healthy"
        elif state in STARTING:
            health = "starting"
        else:
            health = None if running is None else "unhealthy"
        rows[labels.get(INSTANCE_LABEL, "")] = ContainerRow(
            service["Spec"]["Name"], state == "running", health, labels, node[0] if node else None
        )
    return rows


def swarm_gitlab_rows(home_id: str) -> dict[str, ContainerRow] | None:
    """``swarm_rows`` of home ``home_id``'s GitLab services, asked of the local engine (a
    manager) in three requests; None when the engine is not local (the full path asks)."""
    socket_path = engine_api.local_socket()
    if socket_path is None:
        return None
    identity = {"label": [f"{HOME_LABEL}={home_id}", f"{ROLE_LABEL}=gitlab"]}
    services = engine_api.get_json(socket_path, "/services", {"filters": json.dumps(identity)})
    if not services:
        return {}
    wanted = {"service": [str(s["ID"]) for s in services]}
    tasks = engine_api.get_json(socket_path, "/tasks", {"filters": json.dumps(wanted)})
    nodes = engine_api.get_json(socket_path, "/nodes")
    return swarm_rows(nodes, services, tasks)


def _list_with_cli(labels: dict[str, str]) -> list[ContainerRow]:
    import subprocess  # only here: the socket path stays light

    argv = ["docker", "ps", "--all", "--no-trunc", "--format", "{{json .}}"]
    for key, value in labels.items():
        argv += ["--filter", f"label={key}={value}"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"
        if any(marker in proc.stderr for marker in UNREACHABLE):
            raise EngineUnavailableError(f"the Docker engine does not answer: {message}")
        raise DockerError(f"docker ps failed: {message}", argv, proc.returncode, proc.stderr)
    rows = []
    for line in proc.stdout.splitlines():
        raw = json.loads(line)
        rows.append(
            ContainerRow(
                raw["Names"],
                raw.get("State") == "running",
                _health(raw.get("Status", "")),
                _labels(raw.get("Labels", "")),
            )
        )
    return rows

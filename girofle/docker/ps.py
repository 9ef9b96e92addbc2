"""The fleet in one engine query: the containers that carry some labels.

This is the hot path of `girofle ls`; it avoids the heavier clients on purpose: one request
on the engine's local socket, or `docker ps` where the CLI knows better (a remote engine,
a context).
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from girofle.docker import engine_api
from girofle.errors import DockerError, EngineUnavailableError
from girofle.labels import HOME_LABEL, INSTANCE_LABEL, ROLE_LABEL

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

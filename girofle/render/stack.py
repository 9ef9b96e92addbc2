"""An instance, or the edge, as the files of a Swarm stack (`docker stack deploy`, Compose
file format 3): the Swarm target's rendering."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from girofle.config import GirofleConfig
from girofle.errors import UserError
from girofle.labels import NODE_LABEL
from girofle.render import compose, model
from girofle.render.jinja import render
from girofle.render.model import InstancePaths, InstanceSpec

STACK_FILE = "stack.yml"
NODE_FILES = "girofle"  # under the instance's root on its node: gitlab.rb
EDGE_REFRESH_SECONDS = 5
SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def size_bytes(size: str) -> int:
    """Docker's size notation (256m, 1g) in bytes, for a tmpfs' size."""
    text = size.strip().lower()
    unit = text[-1] if text and text[-1] in SIZE_UNITS else ""
    number = text[: len(text) - len(unit)] if unit else text
    return int(number) * SIZE_UNITS[unit]


def content_name(prefix: str, content: bytes) -> str:
    """A name for an immutable swarm object (secret, config) that changes with its content."""
    return f"{prefix}-{hashlib.sha256(content).hexdigest()[:12]}"


def maintenance_minutes(backup_timeout: float | None) -> int:
    """How long a maintenance flag passes an instance's healthcheck: the longest a
    `gitlab-backup restore` may run (a day when it has no timeout), and ten minutes more."""
    return math.ceil((backup_timeout or 86400) / 60) + 10


def node_files(data_root: Path, name: str) -> Path:
    """Where Girofle writes an instance's gitlab.rb on its node."""
    return InstancePaths.of(data_root, name).root / NODE_FILES


def instance_files(spec: InstanceSpec, image_id: str, root_password: bytes) -> dict[str, bytes]:
    """The files of an instance's stack directory: stack.yml, gitlab.rb, instance.env."""
    instance, config = spec.instance, spec.config
    if instance.node is None:
        raise UserError(f"{instance.name} has no node: it was not placed on the swarm")
    context: dict[str, Any] = compose.instance_context(spec)
    labels = compose.traefik_labels(spec) if config.routing == "traefik" else {}
    labels.pop("traefik.docker.network", None)
    if labels:
        labels["traefik.swarm.network"] = model.proxy_network(config.home_id)
    identity = {
        model.HOME_LABEL: config.home_id,
        model.INSTANCE_LABEL: instance.name,
        model.ROLE_LABEL: "gitlab",
    }
    context.update(
        image_id=image_id,
        node_id=instance.node,
        node_files=node_files(config.data_root, instance.name),
        shm_bytes=size_bytes(config.gitlab.shm_size),
        host_ports=[(22, instance.ssh.port)]
        + ([(80, instance.http.port)] if instance.http is not None else []),
        container_labels=identity,
        service_labels={
            **identity,
            NODE_LABEL: instance.node,
            model.RECORD_LABEL: instance.model_dump_json(exclude=set(model.RECORD_VOLATILE)),
            **labels,
        },
        instance_network=model.project_name(config.home_id, instance.name),
        maintenance_flag=model.MAINTENANCE_FLAG,
        maintenance_minutes=maintenance_minutes(config.backups.gitlab_backup_timeout),
        root_secret_name=content_name(
            f"girofle-{config.home_id}-{instance.name}-root", root_password
        ),
    )
    return {
        STACK_FILE: render("gitlab/stack.yml.j2", context),
        "gitlab.rb": render("gitlab/gitlab.rb.j2", context),
        "instance.env": render("gitlab/instance.env.j2", context),
    }


def edge_files(
    config: GirofleConfig, edge_dir: Path, image_id: str, node_id: str, socket: str
) -> dict[str, bytes]:
    """The edge's stack.yml (Traefik's swarm provider) and the dashboard's router."""
    files = compose.render_edge(config)
    del files[compose.COMPOSE_FILE]
    context = {
        "home_id": config.home_id,
        "image_id": image_id,
        "node_id": node_id,
        "socket": socket,
        "edge_dir": str(edge_dir),
        "proxy_network": model.proxy_network(config.home_id),
        "http_port": config.traefik.http_port,
        "https_port": config.traefik.https_port,
        "redirect_to": compose.redirect_target(config),
        "tls_mode": config.tls.mode,
        "dashboard": config.traefik.dashboard,
        "refresh_seconds": EDGE_REFRESH_SECONDS,
        "labels": {model.HOME_LABEL: config.home_id, model.ROLE_LABEL: "edge"},
    }
    return {STACK_FILE: render("edge/stack.yml.j2", context), **files}

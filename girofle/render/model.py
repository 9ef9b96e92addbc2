"""What the renderer needs to know about an instance, and the names derived from it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from girofle import labels
from girofle.config import GirofleConfig
from girofle.home import Home, instance_root
from girofle.inventory import Instance
from girofle.labels import HOME_LABEL as HOME_LABEL
from girofle.labels import INSTANCE_LABEL as INSTANCE_LABEL
from girofle.labels import ROLE_LABEL as ROLE_LABEL
from girofle.quick import rows

ROOT_PASSWORD = "root_password"
# On an instance's swarm service: its record (what Girofle decided for it: image, projects,
# pairs, subnet, settings, node), so that the swarm itself holds the fleet, not only the
# manager's inventory.json. What changes without a deploy (backups, state) is not in it.
RECORD_LABEL = labels.RECORD_LABEL
RECORD_VOLATILE = frozenset({"state", "version", "last_backup", "last_backup_result"})
# In an instance's container while Girofle works in it with GitLab's services stopped (a
# restore): its healthcheck passes meanwhile, so that Swarm does not kill the task. In the
# container's own filesystem, so a new container never has it; honoured only while younger
# than the longest such work may take, so one a killed Girofle left cannot hide a failure.
MAINTENANCE_FLAG = "/run/girofle-maintenance"


def project_name(home_id: str, instance: str) -> str:
    """The Compose project of an instance: unique per home, so homes never share one."""
    return f"girofle-{home_id}-{instance}"


def container_name(instance: str) -> str:
    return f"gitlab-{instance}"


def sidecar_name(instance: str) -> str:
    """The container of an instance's backup sidecar."""
    return f"gitlab-{instance}-backup"


def edge_project(home_id: str) -> str:
    return f"girofle-{home_id}-edge"


def traefik_container(home_id: str) -> str:
    """The container of a home's Traefik."""
    return f"girofle-traefik-{home_id}"


def proxy_network(home_id: str) -> str:
    return f"girofle-{home_id}-proxy"


def hostname(config: GirofleConfig, instance: str, project: str) -> str:
    return config.hostname_pattern.format(project=project, instance=instance, domain=config.domain)


def instance_hostnames(config: GirofleConfig, instance: Instance) -> list[str]:
    """Every hostname of an instance, one per project, in the projects' order."""
    return [hostname(config, instance.name, p) for p in instance.projects]


def router_name(instance: str, project: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", f"{instance}-{project}")


def dashboard_host(config: GirofleConfig) -> str:
    return f"traefik.{config.domain}"


def entrypoint(config: GirofleConfig) -> str:
    """The Traefik entrypoint routers listen on: websecure, or web when TLS is off."""
    return "web" if config.tls.mode == "none" else "websecure"


def edge_port(config: GirofleConfig) -> int:
    """The published port clients reach Traefik's routers on: https's, or http's without TLS."""
    return config.traefik.http_port if config.tls.mode == "none" else config.traefik.https_port


def edge_base_url(config: GirofleConfig, host: str) -> str:
    """https://host[:port] through Traefik (http:// when TLS is off)."""
    scheme, default = ("http", 80) if config.tls.mode == "none" else ("https", 443)
    port = edge_port(config)
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")


def external_url(config: GirofleConfig, instance: Instance) -> str:
    """GitLab's external_url: the first of the instance's URLs, without a trailing slash
    (its OmniAuth callbacks are all on it)."""
    return instance_urls(config, instance)[0].rstrip("/")


def instance_urls(config: GirofleConfig, instance: Instance) -> list[str]:
    """The web URLs of an instance: one per hostname behind Traefik, or its own pair."""
    http = str(instance.http) if instance.http else None
    return rows.instance_urls(quick_settings(config), instance.name, instance.projects, http)


def quick_settings(config: GirofleConfig) -> dict[str, Any]:
    """What the quick `ls` and `routes` need of girofle.yml (see girofle.quick.view)."""
    # A project's hostname and URL through the edge, {instance} and {project} left to fill
    # in (names and domains are validated: they hold no braces).
    host = hostname(config, "{instance}", "{project}")
    dashboard = None
    if config.routing == "traefik" and config.traefik.dashboard:
        dashboard_url = edge_base_url(config, dashboard_host(config)) + "/dashboard/"
        dashboard = {"host": dashboard_host(config), "url": dashboard_url}
    return {
        "home_id": config.home_id,
        "target": config.target,
        "routing": config.routing,
        "hostname_template": host,
        "url_template": edge_base_url(config, host) + "/",
        "edge_address": str(config.traefik.address),
        "edge_port": edge_port(config),
        "dashboard": dashboard,
    }


@dataclass(frozen=True)
class InstancePaths:
    root: Path
    config: Path
    data: Path
    log: Path
    backups: Path

    @classmethod
    def of(cls, data_root: Path, name: str) -> InstancePaths:
        root = instance_root(data_root, name)
        volumes = root / "mapping-volumes"
        return cls(root, volumes / "config", volumes / "data", volumes / "log", root / "bckups")


@dataclass(frozen=True)
class InstanceSpec:
    """Everything that decides an instance's stack files (facts included)."""

    config: GirofleConfig
    home: Home
    instance: Instance
    proxy_subnets: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.instance.name

    @property
    def paths(self) -> InstancePaths:
        return InstancePaths.of(self.config.data_root, self.name)

    @property
    def root_password_file(self) -> Path:
        return self.home.instance_secret_file(self.name, ROOT_PASSWORD)

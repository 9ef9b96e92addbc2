"""The Swarm target's rendering: Compose file format 3 as `docker stack deploy` reads it,
with what Swarm ignores or refuses replaced (reference swarm-upgrades-sso.md A.1)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from girofle.config import GirofleConfig
from girofle.render.model import MAINTENANCE_FLAG
from girofle.render.stack import edge_files, instance_files, maintenance_minutes, size_bytes
from tests.render.test_compose import spec

IMAGE_ID = "sha256:" + "ab" * 32


def swarm_spec(tmp_path: Path, **config: object) -> Any:
    base = spec(tmp_path, scheduler="none", node="n0de1d")
    merged = base.config.model_copy(update={"target": "swarm", **config})
    return type(base)(merged, base.home, base.instance, base.proxy_subnets)


def gitlab(files: dict[str, bytes]) -> dict[str, Any]:
    return yaml.safe_load(files["stack.yml"])["services"]["gitlab"]  # type: ignore[no-any-return]


def test_nothing_swarm_ignores_or_refuses_is_rendered(tmp_path: Path) -> None:
    stack = yaml.safe_load(instance_files(swarm_spec(tmp_path), IMAGE_ID, b"pw\n")["stack.yml"])
    assert "name" not in stack and stack["version"] == "3.9"
    service = stack["services"]["gitlab"]
    for ignored in ("container_name", "shm_size", "restart", "pull_policy", "network_mode"):
        assert ignored not in service
    assert service["image"] == IMAGE_ID  # by ID: no node asks a registry
    shm = [v for v in service["volumes"] if v["target"] == "/dev/shm"]
    assert shm == [{"type": "tmpfs", "target": "/dev/shm", "tmpfs": {"size": 256 * 1024**2}}]
    # Every bind source is absolute: there is no stack directory on the instance's node.
    assert all(Path(v["source"]).is_absolute() for v in service["volumes"] if v["type"] == "bind")
    assert service["ports"] == [
        {"target": 22, "published": 2222, "protocol": "tcp", "mode": "host"}
    ]


def test_the_instance_stays_on_its_node_and_never_runs_twice(tmp_path: Path) -> None:
    deploy = gitlab(instance_files(swarm_spec(tmp_path), IMAGE_ID, b"pw\n"))["deploy"]
    assert deploy["placement"]["constraints"] == ["node.id == n0de1d"]
    assert deploy["replicas"] == 1
    assert deploy["update_config"]["order"] == "stop-first"
    assert deploy["update_config"]["failure_action"] == "pause"  # never a rollback
    assert deploy["labels"]["io.girofle.node"] == "n0de1d"


def test_traefik_reads_service_labels_on_the_swarm_network(tmp_path: Path) -> None:
    service = gitlab(instance_files(swarm_spec(tmp_path), IMAGE_ID, b"pw\n"))
    labels = service["deploy"]["labels"]
    assert labels["traefik.swarm.network"] == "girofle-g1234-proxy"
    assert "traefik.docker.network" not in labels
    assert labels["traefik.http.services.alpha.loadbalancer.server.port"] == "80"
    assert not any(key.startswith("traefik.") for key in service["labels"])


def test_the_root_password_is_a_secret_named_by_its_content(tmp_path: Path) -> None:
    one = yaml.safe_load(
        instance_files(swarm_spec(tmp_path), IMAGE_ID, b"s3cr3t-first\n")["stack.yml"]
    )
    two = yaml.safe_load(
        instance_files(swarm_spec(tmp_path), IMAGE_ID, b"s3cr3t-second\n")["stack.yml"]
    )
    secret_one, secret_two = (
        one["secrets"]["gitlab_root_password"],
        two["secrets"]["gitlab_root_password"],
    )
    assert secret_one["name"] != secret_two["name"]
    assert secret_one["name"].startswith("girofle-g1234-alpha-root-")
    assert "s3cr3t" not in str(one) + str(two)  # only its file is named


def test_the_edge_uses_the_swarm_provider_only(tmp_path: Path) -> None:
    config = swarm_spec(tmp_path).config
    files = edge_files(config, tmp_path / "edge", IMAGE_ID, "m4nager", "/var/run/docker.sock")
    traefik = yaml.safe_load(files["stack.yml"])["services"]["traefik"]
    assert any(arg.startswith("--providers.swarm.network=") for arg in traefik["command"])
    assert not any(arg.startswith("--providers.docker") for arg in traefik["command"])
    assert traefik["deploy"]["placement"]["constraints"] == ["node.id == m4nager"]
    assert {p["mode"] for p in traefik["ports"]} == {"host"}
    assert "dynamic/dashboard.yml" in files


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"backups": {"scheduler": "sidecar"}}, "backups.scheduler"),
        ({"tls": {"mode": "acme", "acme": {"email": "a@b.c"}}}, "acme"),
    ],
)
def test_what_the_swarm_target_lacks_is_refused(
    tmp_path: Path, change: dict[str, object], refused: str
) -> None:
    base = swarm_spec(tmp_path).config.model_dump(mode="json")
    GirofleConfig.model_validate({**base, **change, "target": "compose"})  # fine on one host
    with pytest.raises(ValidationError, match=refused):  # refused before anything is laid out
        GirofleConfig.model_validate({**base, **change, "target": "swarm"})


def test_sizes_in_dockers_notation() -> None:
    assert [size_bytes(s) for s in ("256m", "1g", "512k", "1024")] == [
        268435456,
        1073741824,
        524288,
        1024,
    ]


def test_the_healthcheck_passes_on_a_fresh_maintenance_flag_only(tmp_path: Path) -> None:
    """While Girofle restores (GitLab stopped), the flag keeps Swarm from killing the task;
    one older than the longest restore, or none, leaves the verdict to GitLab's check."""
    kind, command = gitlab(instance_files(swarm_spec(tmp_path), IMAGE_ID, b"pw\n"))["healthcheck"][
        "test"
    ]
    assert kind == "CMD-SHELL"
    flag = tmp_path / "flag"
    # `docker stack deploy` reads $$ as a literal $; the flag's path moved into tmp_path.
    shell = command.replace("$$", "$").replace(MAINTENANCE_FLAG, str(flag))

    def passes() -> bool:
        return subprocess.run(["sh", "-c", shell], check=False).returncode == 0

    assert not passes()  # no flag, and no GitLab on this machine
    flag.touch()
    assert passes()
    minutes = maintenance_minutes(None)
    stale = time.time() - (minutes + 1) * 60
    os.utime(flag, (stale, stale))
    assert not passes()

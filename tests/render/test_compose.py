"""The Compose target: deterministic files, Traefik labels, no secret in any file."""

from __future__ import annotations

import datetime as dt
import os
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import yaml

from girofle.config import GirofleConfig
from girofle.home import Home, host_lock_file
from girofle.inventory import Endpoint, Instance
from girofle.render.compose import render_instance
from girofle.render.model import InstanceSpec


def spec(
    tmp_path: Path, routing: str = "traefik", scheduler: str = "sidecar", **changes: object
) -> InstanceSpec:
    config = GirofleConfig.model_validate(
        {
            "home_id": "g1234",
            "data_root": str(tmp_path / "data"),
            "addresses": ["127.0.0.1"],
            "routing": routing,
            "backups": {"scheduler": scheduler},
        }
    )
    local = IPv4Address("127.0.0.1")
    instance = Instance(
        name="alpha",
        state="creating",
        image="gitlab/gitlab-ce:18.11.11-ce.0",
        address=local,
        projects=["web", "api"],
        ssh=Endpoint(address=local, port=2222),
        http=Endpoint(address=local, port=8080) if routing == "ports" else None,
        subnet=IPv4Network("10.213.0.16/28"),
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        **changes,  # type: ignore[arg-type]
    )
    return InstanceSpec(config, Home(tmp_path / "home"), instance, ("172.30.0.0/24",))


def service(files: dict[str, bytes]) -> dict[str, object]:
    compose = yaml.safe_load(files["docker-compose.yml"])
    return compose["services"]["gitlab"]  # type: ignore[no-any-return]


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    assert render_instance(spec(tmp_path)) == render_instance(spec(tmp_path))


def test_gitlab_service_follows_the_reference(tmp_path: Path) -> None:
    gitlab = service(render_instance(spec(tmp_path)))
    assert gitlab["container_name"] == "gitlab-alpha"
    assert gitlab["image"] == "gitlab/gitlab-ce:18.11.11-ce.0"
    assert gitlab["shm_size"] == "256m"
    assert gitlab["healthcheck"]["start_period"] == "10m"  # type: ignore[index]
    assert gitlab["ports"] == ["127.0.0.1:2222:22"]
    data = tmp_path / "data/noeud-gitlab-alpha/mapping-volumes"
    assert f"{data}/config:/etc/gitlab" in gitlab["volumes"]  # type: ignore[operator]
    assert f"{data}/data:/var/opt/gitlab" in gitlab["volumes"]  # type: ignore[operator]
    assert f"{data}/log:/var/log/gitlab" in gitlab["volumes"]  # type: ignore[operator]


def test_the_instance_network_has_its_allocated_subnet(tmp_path: Path) -> None:
    compose = yaml.safe_load(render_instance(spec(tmp_path))["docker-compose.yml"])
    network = compose["networks"]["default"]
    assert network["ipam"]["config"] == [{"subnet": "10.213.0.16/28"}]
    assert "./:/girofle:ro" in compose["services"]["gitlab"]["volumes"]


def test_one_router_per_hostname_to_port_80(tmp_path: Path) -> None:
    labels = service(render_instance(spec(tmp_path)))["labels"]
    assert isinstance(labels, dict)
    assert labels["traefik.http.services.alpha.loadbalancer.server.port"] == "80"
    assert labels["traefik.http.routers.alpha-web.rule"] == "Host(`web.scm.alpha.kytes.io`)"
    assert labels["traefik.http.routers.alpha-api.rule"] == "Host(`api.scm.alpha.kytes.io`)"
    assert labels["traefik.docker.network"] == "girofle-g1234-proxy"
    assert labels["io.girofle.home"] == "g1234" and labels["io.girofle.instance"] == "alpha"


def test_ports_routing_publishes_http_and_has_no_traefik_labels(tmp_path: Path) -> None:
    gitlab = service(render_instance(spec(tmp_path, "ports")))
    assert gitlab["ports"] == ["127.0.0.1:2222:22", "127.0.0.1:8080:80"]
    assert not [k for k in gitlab["labels"] if k.startswith("traefik.")]  # type: ignore[attr-defined]


def test_gitlab_rb_sets_what_a_proxied_instance_needs(tmp_path: Path) -> None:
    files = render_instance(
        spec(
            tmp_path,
            settings={"gitlab_rails.time_zone": "Europe/Paris", "puma.worker_processes": 0},
        )
    )
    rb = files["gitlab.rb"].decode()
    assert "external_url 'https://web.scm.alpha.kytes.io'" in rb  # TLS ends at Traefik
    assert "nginx['listen_port'] = 80" in rb and "nginx['listen_https'] = false" in rb
    assert "nginx['real_ip_trusted_addresses'] = ['172.30.0.0/24']" in rb
    assert "gitlab_rails['gitlab_shell_ssh_port'] = 2222" in rb
    assert "gitlab_rails['monitoring_whitelist'] = ['127.0.0.0/8', '::1/128']" in rb
    assert "gitlab_rails['time_zone'] = 'Europe/Paris'" in rb
    assert "puma['worker_processes'] = 0" in rb


def test_the_root_password_is_a_file_reference_only(tmp_path: Path) -> None:
    files = render_instance(spec(tmp_path))
    compose = yaml.safe_load(files["docker-compose.yml"])
    assert compose["secrets"]["gitlab_root_password"]["file"].endswith(
        "/secrets/instances/alpha/root_password"
    )
    assert "File.read('/run/secrets/gitlab_root_password')" in files["gitlab.rb"].decode()


def test_the_backup_sidecar_runs_the_daemon_with_the_socket_and_no_network(
    tmp_path: Path,
) -> None:
    compose = yaml.safe_load(render_instance(spec(tmp_path))["docker-compose.yml"])
    sidecar = compose["services"]["backup"]
    assert sidecar["command"] == ["girofle", "backup", "daemon", "alpha"]
    assert sidecar["image"] == "girofle-tools:0.1"
    assert sidecar["network_mode"] == "none"
    assert sidecar["labels"]["io.girofle.role"] == "backup"
    home, instance_dir = tmp_path / "home", tmp_path / "data/noeud-gitlab-alpha"
    lock = host_lock_file()
    assert sidecar["volumes"] == [
        "/var/run/docker.sock:/var/run/docker.sock",
        f"{lock.parent}:{lock.parent}",  # drills queue on the host's lock, one at a time
        f"{home}:{home}",
        f"{instance_dir}:{instance_dir}",
    ]
    assert sidecar["environment"] == {
        "GIROFLE_HOME": str(home),
        "HOME": str(home),
        "GIROFLE_HOST_LOCK": str(lock),
    }
    assert "user" not in sidecar  # a home of root's: the sidecar runs as root, as before


def test_the_sidecar_runs_as_the_homes_owner_after_host_setup(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    os.chown(home, 4242, 4343)
    compose = yaml.safe_load(render_instance(spec(tmp_path))["docker-compose.yml"])
    sidecar = compose["services"]["backup"]
    assert sidecar["user"] == "4242:4343"
    socket_gid = Path("/var/run/docker.sock").stat().st_gid
    assert sidecar["group_add"] == [str(socket_gid)]


def test_cron_or_no_scheduler_means_no_sidecar(tmp_path: Path) -> None:
    for scheduler in ("cron", "none"):
        files = render_instance(spec(tmp_path, scheduler=scheduler))
        assert set(yaml.safe_load(files["docker-compose.yml"])["services"]) == {"gitlab"}

"""An instance, or the edge, as the files of a Compose project (the Compose target's
rendering; girofle.targets.compose applies them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import JsonValue

from girofle.config import GirofleConfig
from girofle.errors import UserError
from girofle.home import host_lock_file
from girofle.memory import puma_workers
from girofle.render import model
from girofle.render.gitlab_rb import ruby_value
from girofle.render.jinja import render
from girofle.render.model import InstanceSpec
from girofle.sso.render import sso_part

COMPOSE_FILE = "docker-compose.yml"
SIGN_IN_PATH = "/users/sign_in"
DASHBOARD_FILE = "dynamic/dashboard.yml"


def setting_line(key: str, value: JsonValue) -> tuple[str, str]:
    """gitlab.rb's left and right side for an operator setting such as a.b=c (the key was
    validated against gitlab_rb.KEY and the known roots)."""
    section, *keys = key.split(".")
    left = section + "".join(f"['{k}']" for k in keys)
    return left, ruby_value(value)


def traefik_labels(spec: InstanceSpec) -> dict[str, str]:
    """One router per hostname, all to one service on port 80 (the image exposes 22 first)."""
    config, name = spec.config, spec.name
    labels = {
        "traefik.enable": "true",
        "traefik.docker.network": model.proxy_network(config.home_id),
        f"traefik.http.services.{name}.loadbalancer.server.port": "80",
    }
    for project in spec.instance.projects:
        host = model.hostname(config, name, project)
        labels.update(router_labels(spec, model.router_name(name, project), f"Host(`{host}`)"))
    labels.update(sign_in_redirects(spec))
    return labels


def router_labels(spec: InstanceSpec, router: str, rule: str) -> dict[str, str]:
    """A router of the instance's service: its rule, entrypoint and TLS."""
    config, prefix = spec.config, f"traefik.http.routers.{router}"
    labels = {
        f"{prefix}.rule": rule,
        f"{prefix}.entrypoints": model.entrypoint(config),
        f"{prefix}.service": spec.name,
    }
    if config.tls.mode == "selfsigned":  # the certificate comes from the file provider
        labels[f"{prefix}.tls"] = "true"
    elif config.tls.mode == "acme":
        labels[f"{prefix}.tls.certresolver"] = "acme"
    return labels


def sign_in_redirects(spec: InstanceSpec) -> dict[str, str]:
    """With single sign-on, a sign-in begun on another hostname than the external URL's is
    sent there first: GitLab has one callback URL (its external URL's), and a login begun
    elsewhere would reach it without its session cookie (OmniAuth then refuses the state).
    A router per other hostname for /users/sign_in, with a redirect (no capture: a `$`
    would be Compose's interpolation)."""
    config, instance = spec.config, spec.instance
    if config.sso is None or not config.sso.providers(instance.name):
        return {}
    middleware = f"{model.router_name(instance.name, 'sign-in')}_sso"
    redirect = {
        f"traefik.http.middlewares.{middleware}.redirectregex.regex": "^.*",
        f"traefik.http.middlewares.{middleware}.redirectregex.replacement": (
            model.external_url(config, instance) + SIGN_IN_PATH
        ),
    }
    for project in instance.projects[1:]:
        # router_name never makes "_": these names cannot be another instance's routers'.
        router = f"{model.router_name(instance.name, project)}_sign_in"
        host = model.hostname(config, instance.name, project)
        redirect.update(router_labels(spec, router, f"Host(`{host}`) && Path(`{SIGN_IN_PATH}`)"))
        redirect[f"traefik.http.routers.{router}.middlewares"] = middleware
    return redirect


def engine_socket() -> str:
    """The engine's unix socket on the host, which the backup sidecar is given."""
    from girofle.docker.gateway import engine_address  # the one place DOCKER_HOST is read

    address = engine_address()
    if not address.startswith("unix://"):
        raise UserError(
            f"the backup sidecar needs the engine's unix socket, and DOCKER_HOST is {address}: "
            "set backups.scheduler: cron (or none) in girofle.yml"
        )
    return address.removeprefix("unix://")


def sidecar_user(home: Path, socket: str) -> dict[str, str | None]:
    """The home's owner, when it is not root (after `girofle host setup`), for the sidecar
    to run as, with the socket's group: its backups are then that user's files, like the
    rest of the home. None (root, as before) otherwise."""
    as_root: dict[str, str | None] = {"user": None, "socket_group": None}
    try:
        owner = home.stat()
        socket_gid = Path(socket).stat().st_gid
    except OSError:
        return as_root
    if owner.st_uid == 0:
        return as_root
    return {"user": f"{owner.st_uid}:{owner.st_gid}", "socket_group": str(socket_gid)}


def backup_sidecar(spec: InstanceSpec) -> dict[str, Any] | None:
    """The sidecar that runs the instance's scheduled backups, or None when it has none.

    It runs `girofle backup daemon` in the tools image with the engine's socket (to run
    gitlab-backup in the instance and restic in a tools container), the home and the
    instance's directory mounted at the same paths as on the host, so that every path
    Girofle hands the engine means the same thing inside and out. It needs no network.
    The host's lock directory is shared too: the sidecars' restore drills queue on the
    same lock as every other Girofle process's, one drill per host at a time.
    """
    config = spec.config
    if config.backups.scheduler != "sidecar":
        return None
    socket = engine_socket()
    return {
        "image": config.tools.image,
        "container_name": model.sidecar_name(spec.name),
        "socket": socket,
        **sidecar_user(spec.home.root, socket),
        "home": str(spec.home.root),
        "instance_root": str(spec.paths.root),
        "host_lock": str(host_lock_file()),
        "host_lock_dir": str(host_lock_file().parent),
        "labels": {
            model.HOME_LABEL: config.home_id,
            model.INSTANCE_LABEL: spec.name,
            model.ROLE_LABEL: "backup",
        },
    }


def instance_context(spec: InstanceSpec) -> dict[str, Any]:
    config, instance = spec.config, spec.instance
    traefik = config.routing == "traefik"
    labels = {
        model.HOME_LABEL: config.home_id,
        model.INSTANCE_LABEL: instance.name,
        model.ROLE_LABEL: "gitlab",
    }
    if traefik:
        labels.update(traefik_labels(spec))
    ports = [f"{instance.ssh.address}:{instance.ssh.port}:22"]
    if instance.http is not None:
        ports.append(f"{instance.http.address}:{instance.http.port}:80")
    first_host = model.hostname(config, instance.name, instance.projects[0])
    sso = sso_part(config, spec.home, instance)
    return {
        "instance": instance.name,
        "home_id": config.home_id,
        "project_name": model.project_name(config.home_id, instance.name),
        "container_name": model.container_name(instance.name),
        "image": instance.image,
        "hostname": first_host,
        "external_url": model.external_url(config, instance),
        "shm_size": config.gitlab.shm_size,
        "healthcheck": config.gitlab.healthcheck.model_dump(),
        "stop_grace_period": config.gitlab.stop_grace_period,
        "paths": spec.paths,
        "ports": ports,
        "labels": labels,
        "proxy_network": model.proxy_network(config.home_id) if traefik else "",
        "trusted_proxies": list(spec.proxy_subnets),
        "ssh_port": instance.ssh.port,
        "subnet": str(instance.subnet),
        "root_password_file": str(spec.root_password_file),
        "settings": [setting_line(k, v) for k, v in sorted(instance.settings.items())],
        "memory_profile": config.gitlab.memory_profile,
        "puma_workers": puma_workers(config.gitlab),
        "sidecar": backup_sidecar(spec),
        "sso_lines": sso.lines,
        "sso_secrets": {name: str(path) for name, path in sso.secrets.items()},
    }


def render_instance(spec: InstanceSpec) -> dict[str, bytes]:
    """The files of an instance's stack directory, by name."""
    context = instance_context(spec)
    return {
        COMPOSE_FILE: render("gitlab/docker-compose.yml.j2", context),
        "gitlab.rb": render("gitlab/gitlab.rb.j2", context),
        "instance.env": render("gitlab/instance.env.j2", context),
    }


def redirect_target(config: GirofleConfig) -> str:
    """Where plain HTTP redirects: the websecure entrypoint, or the published HTTPS port
    (so that the Location header is one clients can reach)."""
    return "websecure" if config.traefik.https_port == 443 else f":{config.traefik.https_port}"


def render_edge(config: GirofleConfig) -> dict[str, bytes]:
    """The files of the edge (Traefik) stack: its Compose file and the dashboard's router
    (the certificates' file is the edge module's, since it follows the fleet)."""
    acme = config.tls.acme if config.tls.mode == "acme" else None
    context = {
        "home_id": config.home_id,
        "project_name": model.edge_project(config.home_id),
        "container_name": model.traefik_container(config.home_id),
        "image": config.traefik.image,
        "proxy_network": model.proxy_network(config.home_id),
        "address": str(config.traefik.address),
        "http_port": config.traefik.http_port,
        "https_port": config.traefik.https_port,
        "redirect_to": redirect_target(config),
        "tls_mode": config.tls.mode,
        "acme": acme.model_dump(mode="json") if acme else None,
        "dashboard": config.traefik.dashboard,
        "labels": {model.HOME_LABEL: config.home_id, model.ROLE_LABEL: "edge"},
    }
    files = {COMPOSE_FILE: render("edge/docker-compose.yml.j2", context)}
    if config.traefik.dashboard:
        files[DASHBOARD_FILE] = render(
            "edge/dashboard.yml.j2",
            {
                "host": model.dashboard_host(config),
                "entrypoint": model.entrypoint(config),
                "tls_mode": config.tls.mode,
            },
        )
    return files

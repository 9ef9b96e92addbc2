"""Bringing an instance to its rendered stack: apply, wait healthy (and ready), record;
and what follows an instance's hostnames (the edge's certificates, DNS)."""

from __future__ import annotations

import time

from girofle.errors import DnsError, DockerError, GirofleError, HealthTimeoutError
from girofle.inventory import Instance
from girofle.lifecycle.app import App
from girofle.lifecycle.records import record
from girofle.lifecycle.routes import wait_routed
from girofle.render import model
from girofle.render.model import InstanceSpec

GITLAB_VERSION_FILE = "/opt/gitlab/embedded/service/gitlab-rails/VERSION"  # reference §1.1
# Asks /-/readiness every 0.2 s until GitLab is ready or $1 seconds passed (exit 124), then
# prints the version file $2: one exec for the whole wait and the version (an exec costs
# about 70 ms; polling from outside took one per try, a second apart). The deadline is the
# script's own: killing a `docker exec` client leaves its process running (moby#9098).
READY_THEN_VERSION = r"""
deadline=$(( $(date +%s) + $1 ))
until curl -sf -o /dev/null http://localhost/-/readiness; do
  [ "$(date +%s)" -lt "$deadline" ] || exit 124
  sleep 0.2
done
exec cat "$2"
"""
NOT_READY = 124


def proxy_subnets(app: App) -> tuple[str, ...]:
    """Fact: the subnets of the edge's proxy network, which GitLab must trust for real IPs."""
    if app.config.routing != "traefik":
        return ()
    # Empty when the edge is not up yet (a dry run before init applied).
    return app.engine.network_subnets_of(model.proxy_network(app.config.home_id))


def running_version(app: App, name: str) -> str:
    """The GitLab version instance ``name`` runs, from the file its image ships."""
    return app.target.exec(name, ["cat", GITLAB_VERSION_FILE]).strip()


def spec_of(app: App, instance: Instance) -> InstanceSpec:
    """What the target renders for ``instance``."""
    return InstanceSpec(app.config, app.home, instance, proxy_subnets(app))


def converge(
    app: App, instance: Instance, reconfigure_after: bool, created: bool = False
) -> Instance:
    """Apply the rendered stack (or, ``created``, start what `create` just made of it), wait
    healthy, reconfigure; record the outcome either way."""
    name = instance.name
    try:
        ensure_sidecar_image(app)
        if created:
            app.progress(f"{name}: starting it")
            app.target.start_created(name)
        else:
            app.progress(f"{name}: applying stack")
            app.target.apply(name)
        wait_healthy(app, instance)
        if reconfigure_after:
            app.progress(f"{name}: healthy; running gitlab-ctl reconfigure")
            app.target.exec(name, ["gitlab-ctl", "reconfigure"])
            # Reconfigure restarts puma and the rest when their settings changed: GitLab
            # answers 502 until it is ready again (reference C7).
            version = wait_ready(app, instance) or None
        else:
            version = running_version(app, name) or None
        wait_routed(app, instance)
    except HealthTimeoutError:
        app.progress(f"{name}: stopping it, since it did not become healthy")
        app.target.stop(name)
        record(app, name, state="failed")
        raise
    except GirofleError:
        record(app, name, state="failed")
        raise
    return record(app, name, state="running", version=version)


def dns_follows(app: App, instance: Instance, gone: tuple[str, ...] = ()) -> None:
    """With a `dns:` section, publish an instance's hostnames (withdraw them once it is
    decommissioned) and withdraw ``gone`` ones. A refusal leaves the instance as it is."""
    settings = app.config.dns
    if settings is None or app.config.routing != "traefik":
        return
    from girofle.edge import dns

    hosts = model.instance_hostnames(app.config, instance)
    try:
        if instance.state == "decommissioned":
            dns.withdraw(settings, [*hosts, *gone])
            return
        dns.withdraw(settings, gone)
        dns.publish(settings, dict.fromkeys(hosts, instance.address))
    except DnsError as err:
        raise DnsError(f"{instance.name} is {instance.state}, but {err}") from None


def edge_follows(app: App, instance: Instance) -> None:
    """The edge's certificates follow an instance's hostnames."""
    if app.config.routing != "traefik":
        return
    from girofle.edge.material import sync_certificates

    sync_certificates(app.config, app.home, extra=instance)


def ensure_sidecar_image(app: App) -> None:
    """The backup sidecar runs the tools image, which Girofle builds (once per version)."""
    if app.config.backups.scheduler == "sidecar":
        from girofle.tools_image import ensure_tools_image

        app.progress(f"checking the tools image {app.config.tools.image} (built when stale)")
        ensure_tools_image(app.config.tools)


def wait_healthy(app: App, instance: Instance) -> None:
    """Wait, following Docker's health events, with progress, up to the configured timeout."""
    timeout = app.config.gitlab.health_timeout
    app.progress(
        f"{instance.name}: waiting until Docker reports it healthy (up to {timeout:.0f} s)"
    )
    app.target.wait_healthy(
        instance.name,
        timeout,
        on_change=lambda status, elapsed: app.progress(
            f"{instance.name}: {status} after {elapsed:.0f} s"
        ),
    )


def wait_ready(app: App, instance: Instance) -> str:
    """Wait until GitLab's readiness probe (asked from inside the container, the only place
    monitoring_whitelist lets it answer) says ready, up to the health timeout; return the
    version GitLab runs."""
    timeout = app.config.gitlab.health_timeout
    deadline = time.monotonic() + timeout
    app.progress(f"{instance.name}: waiting until GitLab reports ready (/-/readiness)")
    while True:
        left = max(1, int(deadline - time.monotonic()))
        argv = ["sh", "-c", READY_THEN_VERSION, "sh", str(left), GITLAB_VERSION_FILE]
        try:
            return app.target.exec(instance.name, argv, timeout=left + 30).strip()
        except DockerError as err:
            # Anything but the script's own deadline (the exec itself failed: a container
            # that restarts) is tried again until the deadline.
            if err.returncode == NOT_READY or time.monotonic() >= deadline:
                raise HealthTimeoutError(
                    f"{instance.name} is healthy, but /-/readiness is not ready after "
                    f"{timeout:.0f} s"
                ) from None
        time.sleep(1)

"""Commissioning and running instances: new-stack, start, stop, restart, reconfigure, rm."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from ipaddress import IPv4Address

from python_on_whales import Container

from girofle import allocate
from girofle.edge.routes import refuse_shared_hostnames
from girofle.errors import (
    ConflictError,
    DnsError,
    DockerError,
    GirofleError,
    HealthTimeoutError,
    UserError,
)
from girofle.home import host_lock, write_private
from girofle.inventory import Instance, Inventory, editing, now, read_inventory
from girofle.lifecycle import claims, validate
from girofle.lifecycle.app import App
from girofle.lifecycle.plan import Plan, plan_files, write_files
from girofle.lifecycle.routes import wait_routed
from girofle.memory import refuse_unless_it_fits
from girofle.render import model
from girofle.render.model import InstancePaths, InstanceSpec

READINESS_PROBE = ("curl", "-sf", "-o", "/dev/null", "http://localhost/-/readiness")


@dataclass(frozen=True)
class NewStackRequest:
    """What `girofle new-stack` was asked for."""

    name: str
    projects: tuple[str, ...] = ()
    address: IPv4Address | None = None
    image: str | None = None
    settings: validate.SettingPairs = validate.NO_SETTINGS
    ssh_port: int | None = None
    http_port: int | None = None
    force: bool = False  # commission even when the memory budget does not fit


def proxy_subnets(app: App) -> tuple[str, ...]:
    """Fact: the subnets of the edge's proxy network, which GitLab must trust for real IPs."""
    if app.config.routing != "traefik":
        return ()
    # Empty when the edge is not up yet (a dry run before init applied).
    return app.engine.network_subnets_of(model.proxy_network(app.config.home_id))


def spec_of(app: App, instance: Instance) -> InstanceSpec:
    return InstanceSpec(app.config, app.home, instance, proxy_subnets(app))


def _planned_instance(app: App, request: NewStackRequest, inventory: Inventory) -> Instance:
    """Validate a request against the inventory and the engine; allocate its pairs."""
    config = app.config
    taken = claims.taken_for(app, inventory, request.name)
    existing = inventory.instances.get(request.name)
    if existing is not None:
        if existing.state in ("creating", "failed"):
            # An interrupted or failed commissioning: resume it as it was, unless what it
            # was given has been taken meanwhile.
            return claims.reallocated(app, existing, taken)
        raise UserError(f"instance {request.name!r} already exists (state {existing.state})")
    if app.engine.container(model.container_name(request.name)) is not None:
        raise ConflictError(
            f"a container named {model.container_name(request.name)} already exists on this "
            "engine and is not in this home's inventory: choose another name"
        )
    address = request.address or config.addresses[0]
    allocate.check_address(address, config.addresses)
    if config.routing != "ports" and request.http_port is not None:
        raise UserError("--http-port applies only to `ports` routing")
    ssh, http, subnet = claims.choose(app, taken, address, request.ssh_port, request.http_port)
    planned = Instance(
        name=request.name,
        state="creating",
        image=request.image or config.gitlab.image,
        address=address,
        projects=list(request.projects or (config.gitlab.default_project,)),
        ssh=ssh,
        http=http,
        subnet=subnet,
        settings=validate.settings(request.settings),
        created_at=now(),
    )
    refuse_shared_hostnames(config, inventory.instances.values(), planned)
    return planned


def _validate_request(request: NewStackRequest) -> None:
    validate.new_instance_name(request.name)
    for project in request.projects:
        validate.project_name(project)
    if len(set(request.projects)) != len(request.projects):
        raise UserError("a project is named twice")
    validate.settings(request.settings)


def plan_new_stack(app: App, request: NewStackRequest) -> Plan:
    """What new-stack would do, changing nothing."""
    _validate_request(request)
    app.engine.ping()
    instance = _planned_instance(app, request, read_inventory(app.home))
    spec = spec_of(app, instance)
    files = app.target.render_instance(spec)
    plan = Plan(files=plan_files(app.home.stack_dir(instance.name), files))
    plan.actions = [
        f"allocate {', '.join(str(e) for e in instance.endpoints())} and subnet "
        f"{instance.subnet} to {instance.name}",
        f"create container {model.container_name(instance.name)} ({instance.image})",
        "wait until Docker reports it healthy, then run gitlab-ctl reconfigure in it",
    ]
    return plan


def new_stack(app: App, request: NewStackRequest) -> Instance:
    """Commission an instance: allocate, render, apply, wait healthy, reconfigure, record."""
    _validate_request(request)
    app.engine.ping()
    if not request.force:
        refuse_unless_it_fits(app.config.gitlab, request.name)
    # The instance lock is held for the whole commissioning: a second girofle process
    # for the same name fails fast, and a SIGKILLed one releases it with its death.
    with app.home.lock(f"instance-{request.name}", wait=False):
        # Refuse bad requests before anything else; then the sidecar's image, before the
        # host lock, since a first build takes minutes.
        _planned_instance(app, request, read_inventory(app.home))
        ensure_sidecar_image(app)
        # What is chosen is on the engine (compose create) before another home chooses.
        with host_lock(app.progress):
            with editing(app.home) as inventory:
                instance = _planned_instance(app, request, inventory)
                inventory.instances[instance.name] = instance
            _lay_out(app, instance)
            project = model.project_name(app.config.home_id, instance.name)
            app.engine.compose_create(app.home.stack_dir(instance.name), project)
        instance = _first_boot(app, instance)
        dns_follows(app, instance)
        return instance


def _lay_out(app: App, instance: Instance) -> None:
    """The instance's root password, directories and rendered stack."""
    spec = spec_of(app, instance)
    password = spec.root_password_file
    if not password.exists():
        write_private(password, secrets.token_urlsafe(24) + "\n")
    paths = spec.paths
    for directory in (paths.config, paths.data, paths.log, paths.backups):
        directory.mkdir(parents=True, exist_ok=True)
    app.progress(f"{instance.name}: rendering stack")
    write_files(app.home.stack_dir(instance.name), app.target.render_instance(spec))


def _first_boot(app: App, instance: Instance) -> Instance:
    edge_follows(app, instance)
    # A first boot is GitLab's heaviest minutes (migrations, a full reconfigure): at most
    # gitlab.concurrent_first_boots at once, so many new-stacks queue instead of timing out.
    limit = first_boot_limit(app)
    with app.home.slot(
        "first-boot",
        limit,
        waiting=lambda elapsed: app.progress(
            f"{instance.name}: waiting for a first-boot slot ({limit} booting, "
            f"{elapsed:.0f} s so far)"
        ),
    ):
        return _converge(app, instance, reconfigure_after=True)


def first_boot_limit(app: App) -> int:
    """How many first boots may run at once: girofle.yml's, else half the CPUs."""
    configured = app.config.gitlab.concurrent_first_boots
    return configured or max(1, (os.cpu_count() or 2) // 2)


def _converge(app: App, instance: Instance, reconfigure_after: bool) -> Instance:
    """Apply the rendered stack, wait healthy, reconfigure; record the outcome either way."""
    name = instance.name
    project = model.project_name(app.config.home_id, name)
    container = model.container_name(name)
    try:
        ensure_sidecar_image(app)
        app.progress(f"{name}: applying stack")
        _apply_stack(app, name, project)
        wait_healthy(app, instance)
        if reconfigure_after:
            app.progress(f"{name}: healthy; running gitlab-ctl reconfigure")
            app.engine.exec(container, ["gitlab-ctl", "reconfigure"])
            # Reconfigure restarts puma and the rest when their settings changed: GitLab
            # answers 502 until it is ready again (reference C7).
            wait_ready(app, instance)
        version = app.engine.gitlab_version(container) or None
        wait_routed(app, instance)
    except HealthTimeoutError:
        app.progress(f"{name}: stopping it, since it did not become healthy")
        app.engine.stop(_containers(app, name), app.config.gitlab.stop_grace_period)
        _record(app, name, state="failed")
        raise
    except GirofleError:
        _record(app, name, state="failed")
        raise
    return _record(app, name, state="running", version=version)


def _apply_stack(app: App, name: str, project: str) -> None:
    """compose up; a container whose network was removed and made anew (the proxy network,
    after `edge down` and `edge up`) cannot start again, so it is recreated (data is in
    bind mounts, and stays)."""
    try:
        app.engine.compose_up(app.home.stack_dir(name), project)
    except DockerError as err:
        if not re.search(r"network \S+ not found", str(err)):
            raise
        app.progress(f"{name}: a network it was on was made anew: recreating its container")
        app.engine.compose_up(app.home.stack_dir(name), project, force_recreate=True)


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
    container = model.container_name(instance.name)
    timeout = app.config.gitlab.health_timeout
    app.progress(
        f"{instance.name}: waiting until Docker reports it healthy (up to {timeout:.0f} s)"
    )
    app.engine.wait_healthy(
        container,
        timeout,
        on_change=lambda status, elapsed: app.progress(
            f"{instance.name}: {status} after {elapsed:.0f} s"
        ),
    )


def wait_ready(app: App, instance: Instance) -> None:
    """Wait until GitLab's readiness probe (asked from inside the container, the only place
    monitoring_whitelist lets it answer) says ready, up to the health timeout."""
    container = model.container_name(instance.name)
    timeout = app.config.gitlab.health_timeout
    deadline = time.monotonic() + timeout
    app.progress(f"{instance.name}: waiting until GitLab reports ready (/-/readiness)")
    while True:
        try:
            app.engine.exec(container, READINESS_PROBE, timeout=30)
            return
        except DockerError:
            if time.monotonic() >= deadline:
                raise HealthTimeoutError(
                    f"{instance.name} is healthy, but /-/readiness is not ready after "
                    f"{timeout:.0f} s"
                ) from None
        time.sleep(1)


def _record(app: App, name: str, **changes: object) -> Instance:
    with editing(app.home) as inventory:
        current = inventory.get(name)
        updated = current.model_copy(update=changes)
        inventory.instances[name] = Instance.model_validate(updated.model_dump())
        return inventory.instances[name]


def _live(app: App, name: str) -> Instance:
    """An instance that is not decommissioned, nor being upgraded by another process (an
    upgrade holds the instance's lock only while a hop applies, and must not find it
    stopped or reconfigured between two steps)."""
    inventory = read_inventory(app.home)
    instance = inventory.get(validate.instance_name(name))
    if instance.state == "decommissioned":
        raise UserError(
            f"instance {name!r} is decommissioned; `girofle rm {name} --purge` removes it"
        )
    upgrade = inventory.upgrades.get(name)
    if upgrade is not None and upgrade.pid != os.getpid() and upgrade.state() == "upgrading":
        raise ConflictError(
            f"{name} is being upgraded to GitLab {upgrade.target} (process {upgrade.pid}): "
            "wait until it ends"
        )
    return instance


def _containers(app: App, name: str) -> list[Container]:
    return app.engine.containers({model.HOME_LABEL: app.config.home_id, model.INSTANCE_LABEL: name})


def start(app: App, name: str) -> Instance:
    """Start a stopped instance (recreating its container if it went missing), wait healthy."""
    instance = _live(app, name)
    app.engine.ping()
    with app.home.lock(f"instance-{name}", wait=False):
        return _converge(app, instance, reconfigure_after=False)


def stop(app: App, name: str) -> Instance:
    """Stop an instance's containers; its data, files and pairs stay."""
    instance = _live(app, name)
    app.engine.ping()
    with app.home.lock(f"instance-{name}", wait=False):
        app.progress(
            f"{name}: stopping (GitLab stops its services first; up to "
            f"{app.config.gitlab.stop_grace_period} s)"
        )
        app.engine.stop(_containers(app, instance.name), app.config.gitlab.stop_grace_period)
        return _record(app, name, state="stopped")


def restart(app: App, name: str) -> Instance:
    """Restart an instance's GitLab container and wait until it is healthy again."""
    instance = _live(app, name)
    app.engine.ping()
    with app.home.lock(f"instance-{name}", wait=False):
        container = app.engine.container(model.container_name(name))
        if container is None:
            return _converge(app, instance, reconfigure_after=False)
        app.engine.restart(container, app.config.gitlab.stop_grace_period)
        wait_healthy(app, instance)
        wait_routed(app, instance)
        return _record(app, name, state="running")


def refresh_stack(app: App, name: str) -> None:
    """Re-render an instance's stack after a fleet setting changed, and apply it if it runs
    (Compose recreates only what changed, and removes a service the stack no longer has)."""
    instance = _live(app, name)
    with app.home.lock(f"instance-{name}", wait=False):
        write_files(app.home.stack_dir(name), app.target.render_instance(spec_of(app, instance)))
        if instance.state == "running":
            ensure_sidecar_image(app)
            project = model.project_name(app.config.home_id, name)
            app.engine.compose_up(app.home.stack_dir(name), project)


def _with_settings(instance: Instance, pairs: validate.SettingPairs) -> Instance:
    return instance.model_copy(
        update={"settings": {**instance.settings, **validate.settings(pairs)}}
    )


def plan_reconfigure(
    app: App, name: str, pairs: validate.SettingPairs = validate.NO_SETTINGS
) -> Plan:
    """What reconfigure would change, changing nothing."""
    instance = _with_settings(_live(app, name), pairs)
    files = app.target.render_instance(spec_of(app, instance))
    plan = Plan(files=plan_files(app.home.stack_dir(name), files))
    compose_changed = any(
        f.status != "identical" and f.path.name == "docker-compose.yml" for f in plan.files
    )
    if compose_changed:
        plan.actions.append(f"recreate container {model.container_name(name)}")
    if plan.files and not plan.nothing_to_do:
        plan.actions.append(f"run gitlab-ctl reconfigure in {model.container_name(name)}")
    return plan


def reconfigure(
    app: App, name: str, pairs: validate.SettingPairs = validate.NO_SETTINGS
) -> Instance:
    """Re-render, apply (recreating only on change), wait healthy, run gitlab-ctl reconfigure.

    If that fails, the stack's previous files and the inventory's previous settings come
    back and are applied again, so the instance is left as it was: a gitlab.rb that GitLab
    refuses would otherwise crash-loop its next boot (reference C6).
    """
    previous = _live(app, name)
    app.engine.ping()
    with app.home.lock(f"instance-{name}", wait=False):
        instance = _with_settings(previous, pairs)
        stack = app.home.stack_dir(name)
        rendered = app.target.render_instance(spec_of(app, instance))
        kept = {f: (stack / f).read_bytes() for f in rendered if (stack / f).is_file()}
        _record(app, name, settings=instance.settings)
        write_files(stack, rendered)
        try:
            return _converge(app, instance, reconfigure_after=True)
        except GirofleError as err:
            app.progress(f"{name}: putting back its previous settings and gitlab.rb")
            _record(app, name, settings=previous.settings)
            write_files(stack, kept)
            _converge(app, previous, reconfigure_after=True)
            raise type(err)(
                f"{err}; {name} runs again with its previous settings and gitlab.rb"
            ) from None


def plan_rm(app: App, name: str, purge: bool) -> Plan:
    instance = read_inventory(app.home).get(validate.instance_name(name))
    plan = Plan()
    if instance.state != "decommissioned":
        if instance.state == "running":
            plan.actions.append(f"take a final backup of {name}")
        plan.actions.append(f"stop and remove the containers and network of {name}")
    if purge:
        paths = InstancePaths.of(app.config.data_root, name)
        plan.actions.append(f"delete {paths.root}, {app.home.stack_dir(name)} and its secrets")
    return plan


def rm(app: App, name: str, purge: bool, final_backup: bool = True) -> Plan:
    """Decommission: a final backup, then containers and network removed; data kept unless
    ``purge`` (which also deletes the local backups, the final one included)."""
    plan = plan_rm(app, name, purge)
    if plan.nothing_to_do:
        return plan
    app.engine.ping()
    instance = read_inventory(app.home).get(name)
    if final_backup and instance.state == "running":
        from girofle.backup.instance import backup_instance  # backup builds on lifecycle

        app.progress(f"{name}: taking a final backup")
        backup_instance(app, name)
    with app.home.lock(f"instance-{name}", wait=False):
        stack = app.home.stack_dir(name)
        project = model.project_name(app.config.home_id, name)
        if instance.state != "decommissioned":
            if (stack / "docker-compose.yml").exists():
                app.engine.compose_down(stack, project)
            _record(app, name, state="decommissioned")
            gone = instance.model_copy(update={"state": "decommissioned"})
            edge_follows(app, gone)
            dns_follows(app, gone)
        if purge:
            _purge(app, name)
    return plan


def _purge(app: App, name: str) -> None:
    paths = InstancePaths.of(app.config.data_root, name)
    for directory in (paths.root, app.home.stack_dir(name), app.home.instance_secrets(name)):
        # Only ever delete what Girofle laid out for this very instance.
        if directory.name in (paths.root.name, name) and directory.exists():
            shutil.rmtree(directory)
    with editing(app.home) as inventory:
        inventory.instances.pop(name, None)


def set_projects(
    app: App, name: str, add: str | None = None, remove: str | None = None
) -> Instance:
    """Add or remove a project hostname on an instance: router, certificate and DNS record
    follow. Docker labels are fixed when a container is created, so Compose recreates the
    GitLab container (its data stays) and Girofle waits until it is healthy and routed."""
    instance = _live(app, name)
    if app.config.routing != "traefik":
        raise UserError("projects are hostnames through Traefik: this home uses `ports` routing")
    projects = list(instance.projects)
    if add is not None:
        validate.project_name(add)
        if add in projects:
            raise UserError(f"{name} already has project {add!r}")
        projects.append(add)
    if remove is not None:
        if remove not in projects:
            raise UserError(f"{name} has no project {remove!r} (it has {', '.join(projects)})")
        if len(projects) == 1:
            raise UserError(f"{remove!r} is the last project of {name}: an instance keeps one")
        projects.remove(remove)
    updated = instance.model_copy(update={"projects": projects})
    app.engine.ping()
    with app.home.lock(f"instance-{name}", wait=False):
        with editing(app.home) as inventory:
            refuse_shared_hostnames(app.config, inventory.instances.values(), updated)
            inventory.instances[name] = updated
        write_files(app.home.stack_dir(name), app.target.render_instance(spec_of(app, updated)))
        edge_follows(app, updated)
        if instance.state == "running":
            updated = _converge(app, updated, reconfigure_after=False)
    removed = tuple(
        model.hostname(app.config, name, p) for p in instance.projects if p not in projects
    )
    dns_follows(app, updated, gone=removed)
    return updated

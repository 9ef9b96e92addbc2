"""Commissioning an instance: new-stack, planned, allocated, laid out, first booted."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from ipaddress import IPv4Address

from girofle import allocate
from girofle.edge.routes import refuse_shared_hostnames
from girofle.errors import ConflictError, UserError
from girofle.home import host_lock, write_private
from girofle.inventory import Instance, Inventory, editing, now, read_inventory
from girofle.lifecycle import claims, validate
from girofle.lifecycle.app import App
from girofle.lifecycle.converge import (
    converge,
    dns_follows,
    edge_follows,
    ensure_sidecar_image,
    spec_of,
)
from girofle.lifecycle.plan import Plan, plan_files, write_files
from girofle.memory import refuse_unless_it_fits
from girofle.sso import registration
from girofle.sso.password import apply_password_sign_in
from girofle.sso.trust import install_provider_ca


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
    node: str | None = None  # target: swarm, the node it goes to (else Girofle chooses)


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
    if app.engine.container(app.target.container(request.name)) is not None:
        raise ConflictError(
            f"a container named {app.target.container(request.name)} already exists on this "
            "engine and is not in this home's inventory: choose another name"
        )
    # On a swarm, the node it goes to publishes its SSH port, on the node's address.
    placement = app.target.place(request.node, [i.node for i in inventory.instances.values()])
    if placement is None:
        address = request.address or config.addresses[0]
        allocate.check_address(address, config.addresses)
    elif request.address is not None:
        raise UserError("--address does not apply to target: swarm: SSH is on the node's address")
    else:
        address = placement[1]
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
        node=placement[0] if placement else None,
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
        f"create container {app.target.container(instance.name)} ({instance.image})",
        "wait until Docker reports it healthy, then run gitlab-ctl reconfigure in it",
    ]
    oidc = registration.oidc_of(app.config, instance.name)
    if oidc is not None and oidc.registration == "dynamic":
        plan.actions.insert(0, f"register {instance.name} as a client of {oidc.issuer}")
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
        # Refuse bad requests before anything else; then the registration with the
        # identity provider and the sidecar's image, before the host lock, since they wait
        # on others (a provider that does not answer leaves nothing made).
        planned = _planned_instance(app, request, read_inventory(app.home))
        registration.ensure_registered(app.config, app.home, planned, app.progress)
        ensure_sidecar_image(app)
        # What is chosen is on the engine (compose create) before another home chooses.
        with host_lock(app.progress):
            with editing(app.home) as inventory:
                # A resumed commissioning may find containers made from an earlier
                # rendering, which only `apply` brings to this one.
                resumed = request.name in inventory.instances
                instance = _planned_instance(app, request, inventory)
                inventory.instances[instance.name] = instance
            lay_out(app, instance)
            app.target.create(instance.name)
        instance = _first_boot(app, instance, created=not resumed)
        apply_password_sign_in(app, instance.name)
        dns_follows(app, instance)
        return instance


def lay_out(app: App, instance: Instance) -> None:
    """The instance's root password, directories and rendered stack."""
    spec = spec_of(app, instance)
    password = spec.root_password_file
    if not password.exists():
        write_private(password, secrets.token_urlsafe(24) + "\n")
    paths = spec.paths
    if app.target.kind == "compose":  # on a swarm, made on its node when it is applied
        for directory in (paths.config, paths.data, paths.log, paths.backups):
            directory.mkdir(parents=True, exist_ok=True)
        install_provider_ca(app.config, instance.name)
    # Ports routing allocates the URL under the host lock: the callbacks follow it.
    registration.ensure_registered(app.config, app.home, instance, app.progress)
    app.progress(f"{instance.name}: rendering stack")
    write_files(app.home.stack_dir(instance.name), app.target.render_instance(spec))


def _first_boot(app: App, instance: Instance, created: bool) -> Instance:
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
        return converge(app, instance, reconfigure_after=True, created=created)


def first_boot_limit(app: App) -> int:
    """How many first boots may run at once: girofle.yml's, else half the CPUs."""
    configured = app.config.gitlab.concurrent_first_boots
    return configured or max(1, (os.cpu_count() or 2) // 2)

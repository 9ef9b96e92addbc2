"""Projects of an instance: each a hostname, with its router, certificate and DNS record."""

from __future__ import annotations

from girofle.edge.routes import refuse_shared_hostnames
from girofle.errors import UserError
from girofle.inventory import Instance, editing
from girofle.lifecycle import validate
from girofle.lifecycle.app import App
from girofle.lifecycle.converge import converge, dns_follows, edge_follows, spec_of
from girofle.lifecycle.plan import write_files
from girofle.lifecycle.records import live
from girofle.render import model
from girofle.sso import registration


def set_projects(
    app: App, name: str, add: str | None = None, remove: str | None = None
) -> Instance:
    """Add or remove a project hostname on an instance: router, certificate and DNS record
    follow. Docker labels are fixed when a container is created, so Compose recreates the
    GitLab container (its data stays) and Girofle waits until it is healthy and routed."""
    instance = live(app, name)
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
        # The provider first: if it refuses, nothing here has changed (and a rerun, with
        # the same hostnames, finds it done).
        registration.ensure_registered(app.config, app.home, updated, app.progress)
        with editing(app.home) as inventory:
            refuse_shared_hostnames(app.config, inventory.instances.values(), updated)
            inventory.instances[name] = updated
        write_files(app.home.stack_dir(name), app.target.render_instance(spec_of(app, updated)))
        edge_follows(app, updated)
        if instance.state == "running":
            updated = converge(app, updated, reconfigure_after=False)
    removed = tuple(
        model.hostname(app.config, name, p) for p in instance.projects if p not in projects
    )
    dns_follows(app, updated, gone=removed)
    return updated

"""Start, stop and restart instances, and refresh a stack after a fleet setting changed."""

from __future__ import annotations

from girofle.inventory import Instance
from girofle.lifecycle.app import App
from girofle.lifecycle.converge import converge, ensure_sidecar_image, spec_of, wait_healthy
from girofle.lifecycle.plan import write_files
from girofle.lifecycle.records import live, record
from girofle.lifecycle.routes import wait_routed


def start(app: App, name: str) -> Instance:
    """Start a stopped instance (recreating its container if it went missing), wait healthy."""
    instance = live(app, name)
    app.engine.ping()
    with app.home.lock(f"instance-{name}", wait=False):
        return converge(app, instance, reconfigure_after=False)


def stop(app: App, name: str) -> Instance:
    """Stop an instance's containers; its data, files and pairs stay."""
    instance = live(app, name)
    app.engine.ping()
    with app.home.lock(f"instance-{name}", wait=False):
        app.progress(
            f"{name}: stopping (GitLab stops its services first; up to "
            f"{app.config.gitlab.stop_grace_period} s)"
        )
        app.target.stop(instance.name)
        return record(app, name, state="stopped")


def restart(app: App, name: str) -> Instance:
    """Restart an instance's GitLab container and wait until it is healthy again."""
    instance = live(app, name)
    app.engine.ping()
    with app.home.lock(f"instance-{name}", wait=False):
        if not app.target.restart(name):
            return converge(app, instance, reconfigure_after=False)
        wait_healthy(app, instance)
        wait_routed(app, instance)
        return record(app, name, state="running")


def refresh_stack(app: App, name: str) -> None:
    """Re-render an instance's stack after a fleet setting changed, and apply it if it runs
    (Compose recreates only what changed, and removes a service the stack no longer has)."""
    instance = live(app, name)
    with app.home.lock(f"instance-{name}", wait=False):
        write_files(app.home.stack_dir(name), app.target.render_instance(spec_of(app, instance)))
        if instance.state == "running":
            ensure_sidecar_image(app)
            app.target.apply(name)

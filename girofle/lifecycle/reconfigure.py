"""gitlab.rb settings: plan and apply a reconfigure, putting the old settings back on failure."""

from __future__ import annotations

from girofle.errors import GirofleError
from girofle.inventory import Instance
from girofle.lifecycle import validate
from girofle.lifecycle.app import App
from girofle.lifecycle.converge import converge, spec_of
from girofle.lifecycle.plan import Plan, plan_files, write_files
from girofle.lifecycle.records import live, record
from girofle.sso import registration
from girofle.sso.password import apply_password_sign_in
from girofle.sso.trust import install_provider_ca


def _with_settings(instance: Instance, pairs: validate.SettingPairs) -> Instance:
    return instance.model_copy(
        update={"settings": {**instance.settings, **validate.settings(pairs)}}
    )


def plan_reconfigure(
    app: App, name: str, pairs: validate.SettingPairs = validate.NO_SETTINGS
) -> Plan:
    """What reconfigure would change, changing nothing."""
    instance = _with_settings(live(app, name), pairs)
    files = app.target.render_instance(spec_of(app, instance))
    plan = Plan(files=plan_files(app.home.stack_dir(name), files))
    compose_changed = any(
        f.status != "identical" and f.path.name == app.target.stack_file for f in plan.files
    )
    if compose_changed:
        plan.actions.append(f"recreate container {app.target.container(name)}")
    if plan.files and not plan.nothing_to_do:
        plan.actions.append(f"run gitlab-ctl reconfigure in {app.target.container(name)}")
    return plan


def reconfigure(
    app: App, name: str, pairs: validate.SettingPairs = validate.NO_SETTINGS
) -> Instance:
    """Re-render, apply (recreating only on change), wait healthy, run gitlab-ctl reconfigure.

    If that fails, the stack's previous files and the inventory's previous settings come
    back and are applied again, so the instance is left as it was: a gitlab.rb that GitLab
    refuses would otherwise crash-loop its next boot (reference C6).
    """
    previous = live(app, name)
    app.engine.ping()
    with app.home.lock(f"instance-{name}", wait=False):
        instance = _with_settings(previous, pairs)
        # An instance made before girofle.yml had sso: registered now.
        registration.ensure_registered(app.config, app.home, instance, app.progress)
        install_provider_ca(app.config, name)
        stack = app.home.stack_dir(name)
        rendered = app.target.render_instance(spec_of(app, instance))
        kept = {f: (stack / f).read_bytes() for f in rendered if (stack / f).is_file()}
        record(app, name, settings=instance.settings)
        write_files(stack, rendered)
        try:
            converged = converge(app, instance, reconfigure_after=True)
        except GirofleError as err:
            app.progress(f"{name}: putting back its previous settings and gitlab.rb")
            record(app, name, settings=previous.settings)
            write_files(stack, kept)
            converge(app, previous, reconfigure_after=True)
            raise type(err)(
                f"{err}; {name} runs again with its previous settings and gitlab.rb"
            ) from None
        # An application setting, through the API of the instance now running.
        apply_password_sign_in(app, name)
        return converged

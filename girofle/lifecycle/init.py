"""`girofle init`: write girofle.yml, lay out the home, start the edge."""

from __future__ import annotations

import secrets
from typing import Any

import yaml
from pydantic import ValidationError

from girofle.config import GirofleConfig, describe_validation_error, dump_config
from girofle.edge.material import edge_dir, ensure_dashboard_credentials, sync_certificates
from girofle.errors import ConflictError, UserError
from girofle.home import Home, write_private
from girofle.lifecycle.app import App
from girofle.lifecycle.plan import Plan, plan_files, write_files
from girofle.render import model
from girofle.targets import make_target


def new_home_id() -> str:
    return f"g{secrets.token_hex(4)}"


def _set_key(data: dict[str, Any], key: str, value: Any, given: str) -> None:
    """Set a dotted key such as gitlab.health_timeout; ``given`` is what errors quote."""
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        if node.get(part) is None:  # an optional section left unset, such as remote
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise UserError(f"invalid --config {given!r}: {part} is not a section")
    node[leaf] = value


def set_dotted(data: dict[str, Any], pairs: tuple[str, ...]) -> None:
    """Apply KEY=VALUE pairs with dotted keys (gitlab.health_timeout=600) to a mapping."""
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(
                f"invalid --config {pair!r}: use KEY=VALUE, e.g. gitlab.health_timeout=600"
            )
        _set_key(data, key, config_value(raw), pair)


def config_value(raw: str) -> Any:
    """A --config value: YAML where it parses (600, true, [a, b]), else the text itself, as
    `-c hostname_pattern={project}-{instance}.{domain}` means (not a YAML mapping)."""
    if not raw:
        return ""
    try:
        return yaml.safe_load(raw)
    except (yaml.YAMLError, RecursionError):
        return raw


def build_config(home: Home, settings: dict[str, Any], pairs: tuple[str, ...]) -> GirofleConfig:
    """The config init would write: defaults, then flags, then --config pairs."""
    base = {
        "home_id": new_home_id(),
        "data_root": str(home.root / "data"),
        "addresses": ["127.0.0.1"],
    }
    # Overrides land on the complete defaults, so that one key of a section can change alone.
    data: dict[str, Any] = GirofleConfig.model_validate(base).model_dump(mode="json")
    for key, value in settings.items():
        if value is not None:
            _set_key(data, key, value, key)
    set_dotted(data, pairs)
    try:
        return GirofleConfig.model_validate(data)
    except ValidationError as err:
        raise UserError(describe_validation_error(err, "girofle init")) from None


def plan_init(app: App, config: GirofleConfig) -> Plan:
    plan = Plan(files=plan_files(app.home.root, {"girofle.yml": dump_config(config).encode()}))
    if config.routing == "traefik":
        # The target of the girofle.yml being planned: there may be none on disk yet.
        target = make_target(config, app.home, lambda: app.engine, app.progress)
        edge = target.render_edge(config)
        plan.files += plan_files(edge_dir(app.home), edge)
        traefik = config.traefik
        https = "" if config.tls.mode == "none" else f", https on {traefik.https_port}"
        plan.actions.append(
            f"start Traefik ({traefik.image}) on {traefik.address}:{traefik.http_port}{https}"
        )
    plan.actions.append(f"create {config.data_root} and {app.home.stacks}")
    return plan


def refuse_pool_clashes(app: App, config: GirofleConfig) -> None:
    """Refuse an instance pool that overlaps a network of the engine Girofle did not make
    (docker0, another tool's): its subnets could never be allocated, or would clash."""
    pool = config.instance_networks.pool
    for name, subnet in app.engine.networks():
        if not name.startswith("girofle-") and pool.overlaps(subnet):
            raise UserError(
                f"instance_networks.pool {pool} overlaps the engine's network {name} "
                f"({subnet}): choose another private range"
            )


def init_home(app: App, config: GirofleConfig) -> str | None:
    """Write girofle.yml and the layout, then start the edge when routing is traefik;
    return the dashboard's new password, which the caller prints once."""
    refuse_pool_clashes(app, config)
    app.home.root.mkdir(parents=True, exist_ok=True)
    for directory in (config.data_root, config.data_root / "sauvegardes", app.home.stacks):
        directory.mkdir(parents=True, exist_ok=True)
    app.home.secrets.mkdir(mode=0o700, exist_ok=True)
    write_files(app.home.root, {"girofle.yml": dump_config(config).encode()})
    app.__dict__["config"] = config  # the App's cached config is now this one
    ensure_restic_password(app, config)
    if config.routing != "traefik":
        return None
    return start_edge(app)


def ensure_restic_password(app: App, config: GirofleConfig) -> None:
    """With a remote and no password file of the operator's, make one (0600), and say where
    it is and that it must also live off this host: without it no remote backup opens."""
    if config.remote is None or config.remote.password_file is not None:
        return
    from girofle.backup.remote import default_password_file

    path = default_password_file(app.home.root)
    if path.exists():
        return
    write_private(path, secrets.token_urlsafe(32) + "\n")
    app.progress(
        f"restic password: {path} (mode 0600). Keep a copy somewhere other than this host: "
        "without it, the remote backups cannot be read"
    )


def start_edge(app: App) -> str | None:
    """Render and apply the edge stack, then wait until Traefik answers its healthcheck;
    return the dashboard's password when it was generated now (to be printed once)."""
    config = app.config
    password = ensure_dashboard_credentials(app.home) if config.traefik.dashboard else None
    directory = edge_dir(app.home)
    write_files(directory, app.target.render_edge(config))
    mounts = ("tls", "auth", "dynamic", *(("acme",) if config.tls.mode == "acme" else ()))
    for mounted in mounts:  # Traefik mounts them; Docker must not create them as root
        (directory / mounted).mkdir(mode=0o700, exist_ok=True)
    sync_certificates(config, app.home)
    app.progress(f"edge: starting Traefik on {config.traefik.address}:{config.traefik.http_port}")
    app.target.apply_edge()
    return password


def stop_edge(app: App) -> None:
    """Stop Traefik (its containers stay)."""
    app.target.stop_edge()


def edge_down(app: App) -> None:
    """Remove the edge's containers and its proxy network; its files (certificates, the
    dashboard's credentials) stay, so `girofle edge up` brings it back as it was.

    Refused while instances run: they are attached to the proxy network."""
    attached = [
        c.name
        for c in app.engine.containers({model.HOME_LABEL: app.config.home_id})
        if c.labels.get(model.ROLE_LABEL) != "edge" and c.running
    ]
    if attached:
        raise ConflictError(
            f"{', '.join(sorted(attached))} still run behind the edge: stop them first "
            "(girofle stop --all)"
        )
    if (edge_dir(app.home) / app.target.stack_file).exists():
        app.progress("edge: removing Traefik and its proxy network (its files stay)")
    app.target.remove_edge()

"""Moving a home laid out by an older Girofle to today's layout, on first use.

Before, every secret sat in <home>/secrets/<scope>/: the home's own (ca, dashboard, restic)
beside each instance's (secrets/<name>/), so an instance named `ca` could reach the CA's
key. Today they live in two trees, secrets/home/ and secrets/instances/.
"""

from __future__ import annotations

from girofle.errors import GirofleError
from girofle.home import SECRET_TREES, Home, atomic_write, needs_migration, private_dirs
from girofle.render.compose import COMPOSE_FILE
from girofle.render.jinja import yaml_scalar
from girofle.render.model import ROOT_PASSWORD

HOME_SCOPES = frozenset({"ca", "dashboard", "restic"})


def migrate_secrets(home: Home) -> list[str]:
    """Move old-layout secrets into their tree; return the entries moved.

    Each instance's compose file is pointed at the new path before its directory moves, so
    a kill between the two leaves a state the rerun finishes (the move is one rename).
    """
    if not needs_migration(home):
        return []
    moved: list[str] = []
    try:
        with home.lock("inventory"):
            for entry in sorted(home.secrets.iterdir()):
                if entry.name in SECRET_TREES:
                    continue
                if entry.name in HOME_SCOPES:
                    destination = home.home_secrets / entry.name
                else:
                    destination = home.instance_secrets(entry.name)
                    _repoint_compose_file(home, entry.name)
                private_dirs(destination.parent)
                if destination.exists():
                    raise GirofleError(
                        f"{entry} and {destination} both exist: keep one and run again"
                    )
                entry.replace(destination)
                moved.append(entry.name)
    except OSError as err:
        raise GirofleError(f"cannot move {home.secrets} to its new layout: {err}") from None
    return moved


def _repoint_compose_file(home: Home, name: str) -> None:
    """Replace the old root-password path in the instance's compose file with the new one,
    exactly as the template renders it (through the same YAML escaper)."""
    compose = home.stack_dir(name) / COMPOSE_FILE
    if not compose.is_file():
        return
    old = yaml_scalar(str(home.secrets / name / ROOT_PASSWORD))
    new = yaml_scalar(str(home.instance_secret_file(name, ROOT_PASSWORD)))
    text = compose.read_text(encoding="utf-8")
    if old in text:
        atomic_write(compose, text.replace(old, new), mode=compose.stat().st_mode & 0o777)

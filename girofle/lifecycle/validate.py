"""Checks on what the user typed, before anything is created."""

from __future__ import annotations

import re

from girofle.errors import UserError
from girofle.render import gitlab_rb

DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
MAX_NAME = 40


# Names the home uses for itself: its Compose projects and networks are girofle-<home>-edge
# and girofle-<home>-proxy (an instance's are girofle-<home>-<name>), and secrets/ca,
# secrets/dashboard and secrets/restic sit where an instance's secrets/<name> would.
RESERVED_NAMES = frozenset({"edge", "proxy", "ca", "dashboard", "restic"})
# An instance's backup sidecar is gitlab-<name>-backup: no instance may be called that.
RESERVED_SUFFIX = "-backup"


def instance_name(name: str) -> str:
    """A DNS label: lowercase letters, digits and '-', a letter first, at most 40 characters."""
    if not DNS_LABEL.fullmatch(name):
        raise UserError(
            f"invalid instance name {name[:60]!r}: use a DNS label of lowercase letters, digits "
            f"and '-', starting with a letter, at most {MAX_NAME} characters"
        )
    return name


def new_instance_name(name: str) -> str:
    """The name of an instance to be made: a valid name that the home does not use for its
    own objects (an instance made before this check can still be stopped and removed)."""
    instance_name(name)
    if name in RESERVED_NAMES or name.endswith(RESERVED_SUFFIX):
        raise UserError(
            f"invalid instance name {name!r}: the home uses it for its own objects "
            f"({', '.join(sorted(RESERVED_NAMES))} and names ending in {RESERVED_SUFFIX})"
        )
    return name


def project_name(project: str) -> str:
    if not DNS_LABEL.fullmatch(project):
        raise UserError(
            f"invalid project {project!r}: use a DNS label of lowercase letters, digits and '-'"
        )
    return project


def settings(pairs: tuple[str, ...]) -> dict[str, str]:
    """--set KEY=VALUE pairs, where KEY is a gitlab.rb key such as gitlab_rails.time_zone:
    its top-level name must be one GitLab knows, and Girofle's own settings are refused."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not gitlab_rb.KEY.fullmatch(key):
            raise UserError(
                f"invalid setting {pair[:80]!r}: use KEY=VALUE with a gitlab.rb key such as "
                "gitlab_rails.time_zone=UTC"
            )
        owner = gitlab_rb.managed_by(key)
        if owner is not None:
            raise UserError(f"invalid setting {key!r}: Girofle sets it from {owner}")
        root = key.split(".")[0]
        if root not in gitlab_rb.known_roots():
            raise UserError(
                f"invalid setting {key!r}: GitLab's gitlab.rb has no {root!r} "
                "(reconfigure would fail on it); see gitlab.rb.template for the names"
            )
        if any(c in value for c in "\n\r\0"):
            raise UserError(f"invalid setting {key!r}: a value is one line")
        result[key] = value
    return result

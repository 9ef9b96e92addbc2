"""Checks on what the user typed, before anything is created."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import JsonValue

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


@dataclass(frozen=True)
class SettingPairs:
    """What --set KEY=VALUE and --set-json KEY=JSON said, as typed."""

    plain: tuple[str, ...] = ()
    json: tuple[str, ...] = ()


NO_SETTINGS = SettingPairs()


def settings(pairs: SettingPairs) -> dict[str, JsonValue]:
    """--set KEY=VALUE and --set-json KEY=JSON pairs, where KEY is a gitlab.rb key such as
    gitlab_rails.time_zone: its top-level name must be one GitLab knows, and Girofle's own
    settings are refused. --set values are typed by gitlab_rb.typed_value."""
    result: dict[str, JsonValue] = {}
    for pair in pairs.plain:
        key, value = _setting_pair(pair, "VALUE")
        result[key] = gitlab_rb.typed_value(value)
    for pair in pairs.json:
        key, text = _setting_pair(pair, "JSON")
        result[key] = _json_value(key, text)
    return result


def _setting_pair(pair: str, what: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not gitlab_rb.KEY.fullmatch(key):
        raise UserError(
            f"invalid setting {pair[:80]!r}: use KEY={what} with a gitlab.rb key such as "
            "gitlab_rails.time_zone (section.key[.subkey...], each part [a-z0-9_])"
        )
    owner = gitlab_rb.managed_by(key)
    if owner is not None:
        raise UserError(f"invalid setting {key!r}: Girofle sets it from {owner}")
    if gitlab_rb.SECRET_KEY.search(key):
        raise UserError(
            f"invalid setting {key!r}: secrets never go through --set (the command line and "
            "the inventory would keep them); write it in the instance's own "
            "/etc/gitlab/gitlab.rb (its config volume, 0600), which GitLab reads after Girofle's"
        )
    root = key.split(".")[0]
    if root not in gitlab_rb.known_roots():
        raise UserError(
            f"invalid setting {key!r}: GitLab's gitlab.rb has no {root!r} "
            "(reconfigure would fail on it); see gitlab.rb.template for the names"
        )
    if any(c in value for c in CONTROL):
        raise UserError(f"invalid setting {key!r}: a value is one line of text")
    return key, value


def _json_value(key: str, text: str) -> JsonValue:
    """A --set-json value: JSON of at most 8 levels, finite numbers, no control characters."""

    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not a number GitLab can use")

    try:
        value: JsonValue = json.loads(text, parse_constant=refuse_constant)
        _check_json(value)
    except (ValueError, RecursionError) as err:
        raise UserError(f"invalid setting {key!r}: not usable JSON ({err})") from None
    return value


CONTROL = frozenset(chr(c) for c in range(32)) | {"\x7f"}


def _check_json(value: JsonValue, level: int = 0) -> None:
    """Refuse JSON nested deeper than 8 levels or with control characters in its strings."""
    if level > 8:
        raise ValueError("nested deeper than 8 levels")
    children: list[JsonValue] = []
    if isinstance(value, list):
        children = value
    elif isinstance(value, dict):
        children = list(value.values())
        for k in value:
            _check_json(k, level + 1)
    elif isinstance(value, str) and any(c in value for c in CONTROL):
        raise ValueError("a string holds a control character")
    for child in children:
        _check_json(child, level + 1)

"""Checks on what the user typed, before anything is created."""

from __future__ import annotations

import re

from girofle.errors import UserError
from girofle.render.compose import SETTING_KEY

DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
MAX_NAME = 40


def instance_name(name: str) -> str:
    """A DNS label: lowercase letters, digits and '-', a letter first, at most 40 characters."""
    if not DNS_LABEL.match(name):
        raise UserError(
            f"invalid instance name {name!r}: use a DNS label of lowercase letters, digits "
            f"and '-', starting with a letter, at most {MAX_NAME} characters"
        )
    return name


def project_name(project: str) -> str:
    if not DNS_LABEL.match(project):
        raise UserError(
            f"invalid project {project!r}: use a DNS label of lowercase letters, digits and '-'"
        )
    return project


def settings(pairs: tuple[str, ...]) -> dict[str, str]:
    """--set KEY=VALUE pairs, where KEY is a gitlab.rb key such as gitlab_rails.time_zone."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.match(SETTING_KEY, key):
            raise UserError(
                f"invalid setting {pair!r}: use KEY=VALUE with a gitlab.rb key such as "
                "gitlab_rails.time_zone=UTC"
            )
        if key.split(".")[0] == "external_url" or "\n" in value:
            raise UserError(f"invalid setting {pair!r}: Girofle manages this value")
        result[key] = value
    return result

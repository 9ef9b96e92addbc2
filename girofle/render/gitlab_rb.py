"""What gitlab.rb accepts, and which of its settings Girofle itself owns.

Real gitlab.rb is evaluated in Mixlib::Config's strict mode (omnibus-gitlab
files/gitlab-cookbooks/package/libraries/settings_dsl.rb, ``from_file``): an unknown
top-level name makes `gitlab-ctl reconfigure` fail, and at the next container start the
boot fails with it. So an operator's ``--set`` key is checked against the names that
GitLab's own gitlab.rb.template uses (girofle/data/gitlab_rb_roots.txt says how that list
was made) before anything is recorded or rendered.
"""

from __future__ import annotations

import math
import re
from functools import cache
from importlib import resources

from pydantic import JsonValue

# gitlab.rb keys (dotted: nginx.listen_port) that Girofle renders itself, and the Girofle
# setting that owns each. A prefix ending in '.' or '_' covers every key under it.
MANAGED: dict[str, str] = {
    "external_url": "hostname_pattern, domain and traefik.https_port in girofle.yml",
    "nginx.listen_port": "routing in girofle.yml (nginx serves plain HTTP behind the edge)",
    "nginx.listen_https": "tls.mode in girofle.yml (TLS ends at the edge)",
    "nginx.real_ip_": "the edge's proxy network, which Girofle trusts for client addresses",
    "gitlab_rails.gitlab_shell_ssh_port": "ssh_ports in girofle.yml or new-stack --ssh-port",
    "gitlab_rails.monitoring_whitelist": "Girofle's health checks (probes stay in-container)",
    "gitlab_rails.initial_root_password": "the root password file in Girofle's secrets",
    "letsencrypt.": "tls.mode: acme in girofle.yml (certificates come from the edge)",
    "gitlab_rails.omniauth_providers": "sso in girofle.yml",
    "gitlab_rails.omniauth_enabled": "sso in girofle.yml",
    "gitlab_rails.omniauth_allow_single_sign_on": "sso.allow_single_sign_on in girofle.yml",
    "gitlab_rails.omniauth_block_auto_created_users": "sso.block_auto_created_users",
    "gitlab_rails.omniauth_auto_link_user": "sso.auto_link_user in girofle.yml",
    "gitlab_rails.omniauth_auto_link_saml_user": "sso.auto_link_user in girofle.yml",
}
# A key that names a secret (not a path to one): its value would sit in argv, the
# inventory and gitlab.rb.
SECRET_KEY = re.compile(
    r"(password|secret|token|key_base|private_key)(?![a-z_]*_(file|path|dir)$)[a-z_]*$"
)
KEY = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")
INTEGER = re.compile(r"-?(0|[1-9][0-9]{0,17})")


@cache
def known_roots() -> frozenset[str]:
    """Top-level names of gitlab.rb settings at the pinned GitLab version."""
    text = resources.files("girofle").joinpath("data/gitlab_rb_roots.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def managed_by(key: str) -> str | None:
    """The Girofle setting that owns a gitlab.rb key, or None when the operator may set it."""
    for prefix, owner in MANAGED.items():
        whole = prefix if prefix[-1] in "._" else f"{prefix}."
        if key == prefix or key.startswith(whole):
            return owner
    return None


def typed_value(text: str) -> JsonValue:
    """A --set value typed explicitly: true/false, a canonical ASCII integer, else a string.

    ``010`` stays the string '010' (Ruby would read an octal 8), and so does any text that
    is not plain ASCII digits (``²``), or ``nil``: other types come with --set-json.
    """
    if text in ("true", "false"):
        return text == "true"
    if INTEGER.fullmatch(text):
        return int(text)
    return text


def ruby_value(value: JsonValue) -> str:
    """A setting's value as a Ruby literal: nil, true/false, a number, a single-quoted
    string, an array or a hash with string keys; nothing else reaches gitlab.rb."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a number must be finite")
        return repr(value)
    if isinstance(value, str):
        return ruby_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(ruby_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{ruby_string(k)} => {ruby_value(v)}" for k, v in value.items()) + "}"


def ruby_string(text: str) -> str:
    """Ruby's single-quoted string: only backslash and quote are special inside it."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

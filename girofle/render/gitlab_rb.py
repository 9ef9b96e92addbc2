"""What gitlab.rb accepts, and which of its settings Girofle itself owns.

Real gitlab.rb is evaluated in Mixlib::Config's strict mode (omnibus-gitlab
files/gitlab-cookbooks/package/libraries/settings_dsl.rb, ``from_file``): an unknown
top-level name makes `gitlab-ctl reconfigure` fail, and at the next container start the
boot fails with it. So an operator's ``--set`` key is checked against the names that
GitLab's own gitlab.rb.template uses (girofle/data/gitlab_rb_roots.txt says how that list
was made) before anything is recorded or rendered.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

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
}
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


def ruby_value(value: str) -> str:
    """A --set value as Ruby: true/false/nil, a decimal integer, or else a string.

    ``010`` stays the string '010' (Ruby would read an octal 8), and so does any text
    that is not plain ASCII digits.
    """
    if value in ("true", "false", "nil") or INTEGER.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

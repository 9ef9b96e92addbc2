"""A static check of the Traefik configuration Girofle emits (labels and file-provider YAML).

It knows the Traefik v3 options Girofle may write (docker provider labels, reference:
docs/content/reference/routing-configuration/other-providers/docker.md) and checks that
each router is whole (rule, service, entrypoints), that rules quote with backticks, and
that no hostname reaches two routers.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ROUTER_OPTIONS = {
    "rule",
    "entrypoints",
    "middlewares",
    "service",
    "priority",
    "tls",
    "tls.certresolver",
    "tls.options",
    "observability.accesslogs",
    "observability.metrics",
    "observability.tracing",
}
ROUTER_OPTION_PATTERNS = (re.compile(r"^tls\.domains\[\d+\]\.(main|sans)$"),)
SERVICE_OPTIONS = {
    "loadbalancer.server.port",
    "loadbalancer.server.scheme",
    "loadbalancer.server.url",
    "loadbalancer.passhostheader",
    "loadbalancer.serverstransport",
    "loadbalancer.responseforwarding.flushinterval",
}
SERVICE_OPTION_PATTERNS = (
    re.compile(r"^loadbalancer\.healthcheck\.[a-z]+$"),
    re.compile(r"^loadbalancer\.sticky\.cookie(\.[a-z]+)?$"),
)
CONTAINER_OPTIONS = {"traefik.enable", "traefik.docker.network", "traefik.docker.allownonrunning"}
LABEL = re.compile(r"^traefik\.http\.(routers|services|middlewares)\.([A-Za-z0-9_-]+)\.(.+)$")
MIDDLEWARE_OPTION = re.compile(r"^[a-z]+\.[a-z.\[\]0-9]+$")
HOST_RULE = re.compile(r"Host\(([^)]*)\)")
QUOTED = re.compile(r"^`[^`]+`$")
# Every rule Girofle writes is one Host() of one DNS name, or that and GitLab's sign-in path
# (sent to the external URL when single sign-on is on): anything more (a second Host, an
# `||`, a PathPrefix) came from a value that was not escaped.
ONE_HOST = re.compile(r"Host\(`[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?`\)( && Path\(`/users/sign_in`\))?")


@dataclass
class Router:
    where: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)


def _known(section: str, option: str) -> bool:
    if section == "routers":
        return option in ROUTER_OPTIONS or any(p.match(option) for p in ROUTER_OPTION_PATTERNS)
    if section == "services":
        return option in SERVICE_OPTIONS or any(p.match(option) for p in SERVICE_OPTION_PATTERNS)
    return bool(MIDDLEWARE_OPTION.match(option))


def routers_from_labels(where: str, labels: Mapping[str, str], problems: list[str]) -> list[Router]:
    """The routers a container's labels declare; unknown keys are reported."""
    routers: dict[str, Router] = {}
    for key, value in labels.items():
        if not key.startswith("traefik."):
            continue
        if key in CONTAINER_OPTIONS:
            continue
        match = LABEL.match(key)
        if match is None or not _known(match.group(1), match.group(3)):
            problems.append(f"{where}: {key} is not a Traefik v3 option Girofle knows")
            continue
        if match.group(1) == "routers":
            router = routers.setdefault(match.group(2), Router(where, match.group(2)))
            router.options[match.group(3)] = value
    return list(routers.values())


def routers_from_file(where: str, document: Mapping[str, Any]) -> list[Router]:
    """The HTTP routers of a file-provider document."""
    section = (document.get("http") or {}).get("routers") or {}
    return [
        Router(where, name, {k.lower(): v for k, v in options.items()})
        for name, options in section.items()
    ]


def hostnames(rule: str) -> list[str]:
    return [h.strip("`") for group in HOST_RULE.findall(rule) for h in group.split(",")]


def check_routers(routers: Iterable[Router], problems: list[str]) -> None:
    """Each router whole and backtick-quoted; each hostname on exactly one router."""
    owners: dict[str, list[str]] = defaultdict(list)
    for router in routers:
        label = f"{router.where}: router {router.name}"
        for needed in ("rule", "service", "entrypoints"):
            if not router.options.get(needed):
                problems.append(f"{label} has no {needed}")
        rule = str(router.options.get("rule", ""))
        if rule and not ONE_HOST.fullmatch(rule):
            problems.append(f"{label}: rule {rule[:120]!r} is not one Host(`name`)")
        for group in HOST_RULE.findall(rule):
            for quoted in (part.strip() for part in group.split(",")):
                if not QUOTED.match(quoted):
                    problems.append(f"{label}: {quoted} is not quoted with backticks")
        if "Path(" in rule:
            continue  # one path of a hostname that has its own router
        for host in hostnames(rule):
            owners[host.lower()].append(f"{router.where}/{router.name}")
    for host, where in sorted(owners.items()):
        if len(where) > 1:
            problems.append(f"hostname {host} reaches {len(where)} routers: {', '.join(where)}")


def check_configuration(
    labels: Mapping[str, Mapping[str, str]], files: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Every problem in the labels (by container) and file-provider documents (by file)."""
    problems: list[str] = []
    routers: list[Router] = []
    for where, container_labels in labels.items():
        routers += routers_from_labels(where, container_labels, problems)
    for where, document in files.items():
        routers += routers_from_file(where, document)
    check_routers(routers, problems)
    return problems

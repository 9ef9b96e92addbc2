"""Memory: each instance's budget, the puma workers it pays for, and whether a host fits.

GitLab sizes puma from the memory and CPUs *of the host*, as Ohai sees them, not from any
container limit (omnibus-gitlab files/gitlab-cookbooks/gitlab/libraries/puma.rb), so a
fleet on one host would each take the whole host's share. Girofle gives each instance a
budget instead, sets its puma workers from it with GitLab's own formula, and refuses a
commission the host's MemAvailable cannot hold.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from girofle.config import GitlabSettings
from girofle.errors import ConflictError

GIB = 1 << 30
# GitLab's documented minimum for its memory-constrained mode is 2 GB plus swap, 2.5 GB at
# best (doc/settings/memory_constrained_envs.md); it recommends 8 GB or more otherwise.
DEFAULT_BUDGET = {"standard": 8 * GIB, "constrained": int(2.5 * GIB)}
# puma.rb: reserve 1.5 GiB for the rest, then 1 GiB per worker, between 2 and the CPUs.
PUMA_RESERVED = int(1.5 * GIB)
PUMA_PER_WORKER = GIB
SIZE = re.compile(r"(\d+(?:\.\d+)?)([kmg])", re.IGNORECASE)
UNIT = {"k": 1 << 10, "m": 1 << 20, "g": GIB}
# A file in /proc/meminfo's format, read instead of /proc/meminfo (tests, containers).
MEMINFO_OVERRIDE = "GIROFLE_MEMINFO"


def parse_size(text: str) -> int:
    """Bytes in a size such as 8g, 2560m or 2.5g."""
    match = SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 8g or 2560m")
    return int(float(match.group(1)) * UNIT[match.group(2).lower()])


def budget(settings: GitlabSettings) -> int:
    """The memory one instance is given, in bytes."""
    if settings.memory_budget is not None:
        return parse_size(settings.memory_budget)
    return DEFAULT_BUDGET[settings.memory_profile]


def puma_workers(settings: GitlabSettings, cpus: int | None = None) -> int:
    """Puma workers for an instance: 0 (single mode) when constrained, else GitLab's
    formula applied to the instance's budget instead of the host's memory."""
    if settings.memory_profile == "constrained":
        return 0
    fits = (budget(settings) - PUMA_RESERVED) // PUMA_PER_WORKER
    return max(2, min(cpus or os.cpu_count() or 1, fits))


def meminfo() -> dict[str, int]:
    """/proc/meminfo (or the file GIROFLE_MEMINFO names) in bytes, by field."""
    path = Path(os.environ.get(MEMINFO_OVERRIDE) or "/proc/meminfo")
    fields = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            fields[key.strip()] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return fields


def refuse_unless_it_fits(settings: GitlabSettings, name: str) -> None:
    """A ConflictError (one line, what to change) when MemAvailable is below the budget."""
    available = meminfo().get("MemAvailable", 0)
    needed = budget(settings)
    if available < needed:
        raise ConflictError(
            f"{name} needs {needed / GIB:.1f} GiB (gitlab.memory_budget, profile "
            f"{settings.memory_profile}) and this host has {available / GIB:.1f} GiB "
            "available: free memory, set gitlab.memory_profile: constrained or a smaller "
            "gitlab.memory_budget, or pass --force"
        )

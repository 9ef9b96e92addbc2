"""GitLab's upgrade path: the required stops between two versions, each at its latest patch.

The stops come from a copy of GitLab's own config/upgrade_path.yml, plus the rule GitLab's
docs give from 17.5 on (stops at x.2, x.5, x.8 and x.11); the latest patch of each minor
from a list taken from omnibus-gitlab's tags. Both ship with Girofle and are never fetched
at upgrade time; newer copies can be given as files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from girofle.errors import UserError

Version = tuple[int, int, int]
# The rule of doc/update/upgrade_paths.md: "In GitLab 17.5 and later... required upgrade
# stops occur at versions x.2.z, x.5.z, x.8.z, and x.11.z."
RULE_FROM: tuple[int, int] = (17, 5)
RULE_MINORS = (2, 5, 8, 11)
# The tag of GitLab's images: <version>-<edition>.0 (omnibus lib/gitlab/build/info/docker.rb).
IMAGE_TAG = re.compile(r"^(?P<repo>[^\s]+):(?P<version>\d+\.\d+\.\d+)-(?P<edition>ce|ee)\.0$")
VERSION = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}$")


def parse_version(text: str) -> Version:
    """'18.11.11' as (18, 11, 11); anything else is refused in one line."""
    if not VERSION.match(text):
        raise UserError(f"{text!r} is not a GitLab version (MAJOR.MINOR.PATCH, e.g. 18.11.11)")
    major, minor, patch = (int(part) for part in text.split("."))
    return major, minor, patch


def show(version: Version) -> str:
    return ".".join(str(part) for part in version)


def _yaml(path: Path | None, packaged: str, what: str) -> Any:
    try:
        if path is None:
            return yaml.safe_load(resources.files("girofle").joinpath(packaged).read_text())
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise UserError(f"{path}: cannot read it as {what}: {err}") from None


@dataclass(frozen=True)
class UpgradePaths:
    """Required stops (major, minor) and the latest patch of each known minor."""

    stops: frozenset[tuple[int, int]]
    latest: dict[tuple[int, int], int]

    @classmethod
    def load(cls, path_file: Path | None = None, versions_file: Path | None = None) -> UpgradePaths:
        """The shipped copies, or the files given instead."""
        entries = _yaml(path_file, "data/upgrade_path.yml", "GitLab's upgrade_path.yml")
        listed = _yaml(versions_file, "data/gitlab_versions.yml", "a list of GitLab versions")
        try:
            stops = frozenset((int(e["major"]), int(e["minor"])) for e in entries)
            latest = {
                (int(k.split(".")[0]), int(k.split(".")[1])): int(v)
                for k, v in listed["latest_patch"].items()
            }
        except (TypeError, KeyError, ValueError, AttributeError, IndexError):
            raise UserError(
                f"{path_file or versions_file}: not in the expected form "
                "(a list of {major, minor}; latest_patch: {'MAJOR.MINOR': PATCH})"
            ) from None
        return cls(stops, latest)

    def is_stop(self, minor: tuple[int, int]) -> bool:
        return minor in self.stops or (minor >= RULE_FROM and minor[1] in RULE_MINORS)

    def known(self, version: Version) -> bool:
        latest = self.latest.get(version[:2])
        return latest is not None and version[2] <= latest

    def plan(self, current: Version, target: Version) -> list[Version]:
        """The hops from ``current`` to ``target``: each required stop in between at its
        latest patch, then the target. A downgrade or an unknown target is refused."""
        if target < current:
            raise UserError(
                f"{show(target)} is older than {show(current)}: GitLab cannot be downgraded in "
                "place (restore a backup made on that version instead)"
            )
        if not self.known(target):
            newest = max((m, p) for m, p in self.latest.items())
            raise UserError(
                f"GitLab {show(target)} is not a version Girofle knows (newest known: "
                f"{show((*newest[0], newest[1]))}); give a newer list with --versions-file"
            )
        hops = []
        for minor in sorted(m for m in self.latest if self.is_stop(m)):
            stop = (*minor, self.latest[minor])
            if current < stop < target:
                hops.append(stop)
        return [*hops, target] if target != current else []


def image_for(current_image: str, version: Version) -> str:
    """The image of ``version`` in the same repository and edition as ``current_image``."""
    match = IMAGE_TAG.match(current_image)
    if match is None:
        raise UserError(
            f"{current_image}: Girofle upgrades images tagged <version>-ce.0 or "
            "<version>-ee.0 (as gitlab/gitlab-ce's are), and cannot tell this one's version"
        )
    return f"{match['repo']}:{show(version)}-{match['edition']}.0"


def image_version(image: str) -> Version:
    match = IMAGE_TAG.match(image)
    if match is None:
        image_for(image, (0, 0, 0))  # raises the explanation
    assert match is not None
    return parse_version(match["version"])

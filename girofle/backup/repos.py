"""What each repository holds (branches, tags, commits) and whether `git fsck` passes,
read by git inside an instance's container, in one exec for all of them.

GitLab keeps repositories in hashed storage, its only layout since 14.0
(app/models/storage/hashed.rb): @hashed/<h[0..1]>/<h[2..3]>/<h>.git, h the SHA-256 of the
project id. Repositories belong to git; Girofle reads them as root, so it tells git not to
refuse them as another user's (safe.directory), and it only reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from girofle.lifecycle.app import App

REPOSITORIES = "/var/opt/gitlab/git-data/repositories"
# Shell functions that print repositories' states as lines. `state` reads $repo: its refs
# always; the commits they reach unless $mode is "heads" (what a backup compares before
# and after GitLab's: equal refs reach equal commits); and git fsck when $mode is "fsck"
# (a drill). `project_states ROOT` does it for every project repository under hashed
# storage (wikis and designs left out). git gets no stdin: a backup's exec carries the API
# token on stdin for the Ruby reading that may follow.
STATE_FUNCTIONS = r"""
g() { git -c safe.directory='*' --git-dir="$repo" "$@" </dev/null; }
state() {
  printf '== %s\n' "$repo"
  if [ ! -d "$repo" ]; then echo missing; return; fi
  g for-each-ref --format='ref %(refname) %(objectname)' refs/heads refs/tags
  [ "$mode" = heads ] || printf 'commits %s\n' "$(g rev-list --count --branches --tags)"
  if [ "$mode" = fsck ]; then
    if out=$(g fsck --no-progress 2>&1); then echo 'fsck ok'
    else printf 'fsck %s\n' "$(printf '%s\n' "$out" | tail -n 1)"; fi
  fi
}
project_states() {
  for repo in "$1"/@hashed/*/*/*.git; do
    case $repo in *.wiki.git|*.design.git) continue;; esac
    if [ -d "$repo" ]; then state; fi
  done
}
"""
# The paths come as arguments ("$@"), never inside the script: nothing to escape. The
# first argument is the mode: fsck or refs.
SCRIPT = (
    STATE_FUNCTIONS
    + r"""
mode=$1; shift
for repo in "$@"; do state; done
"""
)


@dataclass(frozen=True)
class RepositoryState:
    """Branches and tags with their commits, the commits they reach (None when not read),
    and fsck's verdict."""

    refs: dict[str, str]
    commits: int | None
    fsck: str  # "ok", or git's last line
    missing: bool = False


def disk_path(project_id: int, wiki: bool = False) -> str:
    """A project's repository (or its wiki's) in the container."""
    digest = hashlib.sha256(str(project_id).encode()).hexdigest()
    suffix = ".wiki.git" if wiki else ".git"
    return f"{REPOSITORIES}/@hashed/{digest[:2]}/{digest[2:4]}/{digest}{suffix}"


def repository_states(
    app: App, container: str, paths: list[str], fsck: bool = True
) -> dict[str, RepositoryState]:
    """The state of each repository at ``paths`` (a missing one says so); ``fsck`` "not run"
    unless asked."""
    if not paths:
        return {}
    mode = "fsck" if fsck else "refs"
    output = app.engine.exec(container, ["sh", "-c", SCRIPT, "sh", mode, *paths])
    return parse_states(output.splitlines())


def parse_states(lines: list[str]) -> dict[str, RepositoryState]:
    """The states `state` printed, by repository path."""
    states: dict[str, RepositoryState] = {}
    refs: dict[str, str] = {}
    current, commits, verdict, missing = "", None, "not run", False
    for line in [*lines, "== "]:
        if line.startswith("== "):
            if current:
                states[current] = RepositoryState(dict(refs), commits, verdict, missing)
            current, refs, commits, verdict, missing = line[3:], {}, None, "not run", False
        elif line == "missing":
            missing = True
        elif line.startswith("ref "):
            _, name, commit = line.split(" ", 2)
            refs[name] = commit
        elif line.startswith("commits "):
            commits = int(line.split()[1] or 0)
        elif line.startswith("fsck "):
            verdict = line[5:]
    return states

"""A backup's own work inside an instance's container, in one exec before GitLab's backup
and one after it.

A `docker exec` costs about 70 ms on the machines measured (the engine starts a process
through runc, whichever client asks), more than the work of most steps: checking GitLab's
backup lock, sweeping archives a killed run left, reading every repository's refs, and
reading the API (READS, in Ruby). So a probe does the steps it is asked for, in that order,
in one shell script. The script is a constant; paths come as arguments and the API token
on stdin, for the Ruby reading that ends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from girofle.backup import api
from girofle.backup.repos import REPOSITORIES, STATE_FUNCTION, RepositoryState, parse_states
from girofle.lifecycle.app import App

# GitLab's backup directory (gitlab_rails['backup_path']), git's and 0700 in the image.
GITLAB_BACKUPS = "/var/opt/gitlab/backups"
GITLAB_ARCHIVE_SUFFIX = "_gitlab_backup.tar"
# GitLab's backup/restore lock: Rails.root/tmp/backup_restore.pid (lib/tasks/gitlab/backup.rb).
GITLAB_BACKUP_PID_FILE = "/opt/gitlab/embedded/service/gitlab-rails/tmp/backup_restore.pid"

Step = Literal["lock", "sweep", "refs", "reads"]

# $1 the steps, $2 the lock, $3 GitLab's backup directory, $4 the repositories, $5 a path
# to remove first ("" for none), $6 the Ruby reading; the rest are its arguments.
# - lock: when GitLab's pid file names a live process, print `busy <mtime>` and stop (a
#   process started by `docker exec` outlives a client that was killed);
# - sweep: remove GitLab archives left in its backup directory (Girofle moves every
#   archive of a complete backup out, so one still there is a killed run's), `swept NAME`;
# - refs: every project repository's state (hashed storage; wikis and designs left out);
# - reads: READS, whose JSON document is the last line.
SCRIPT = (
    STATE_FUNCTION
    + r"""
steps=" $1 "; pidfile=$2; backups=$3; repositories=$4; remove=$5; reads=$6
shift 6
has() { case $steps in *" $1 "*) return 0;; esac; return 1; }
if has lock; then
  pid=$(cat "$pidfile" 2>/dev/null) || pid=
  case $pid in
    ''|*[!0-9]*) ;;
    *) if [ -d "/proc/$pid" ]; then
         printf 'busy %s\n' "$(stat -c %Y "$pidfile" 2>/dev/null || echo 0)"; exit 0
       fi;;
  esac
fi
[ -z "$remove" ] || rm -rf -- "$remove"
if has sweep; then
  for archive in "$backups"/*_gitlab_backup.tar; do
    [ -f "$archive" ] || continue
    rm -f -- "$archive" && printf 'swept %s\n' "${archive##*/}"
  done
fi
if has refs; then
  fsck=refs
  for repo in "$repositories"/@hashed/*/*/*.git; do
    case $repo in *.wiki.git|*.design.git) continue;; esac
    if [ -d "$repo" ]; then state; fi
  done
fi
if has reads; then exec ruby -e "$reads" "$@"; fi
"""
)


@dataclass(frozen=True)
class Probe:
    """What a probe found: GitLab's lock (the pid file's mtime when a backup or restore
    runs), the archives it swept, the repositories' states by path, and the API's reading."""

    busy: int | None = None
    swept: list[str] = field(default_factory=list)
    repositories: dict[str, RepositoryState] = field(default_factory=dict)
    reading: api.Reading | None = None

    @property
    def token_status(self) -> int:
        """How GitLab answered Girofle's token (200 when the probe did not read the API)."""
        return 200 if self.reading is None else self.reading.token_status


def probe(
    app: App, container: str, steps: Sequence[Step], remove: str = "", token: str = ""
) -> Probe:
    """Run ``steps`` in ``container`` in one exec (``remove``: a path deleted first)."""
    argv = ["sh", "-c", SCRIPT, "sh", " ".join(steps), GITLAB_BACKUP_PID_FILE]
    argv += [GITLAB_BACKUPS, REPOSITORIES, remove, api.READS, *api.reads_arguments()]
    out = app.engine.exec(container, argv, stdin=token)
    lines = out.splitlines()
    if lines and lines[0].startswith("busy "):
        return Probe(busy=int(lines[0].split()[1] or 0))
    reading = None
    if "reads" in steps:
        reading = api.parse_reading(container, lines.pop() if lines else "")
    swept = [line[6:] for line in lines if line.startswith("swept ")]
    states = parse_states([line for line in lines if not line.startswith("swept ")])
    return Probe(None, swept, states, reading)


def probe_instance(
    app: App, name: str, container: str, steps: Sequence[Step], remove: str = ""
) -> Probe:
    """``probe`` of instance ``name``, with Girofle's token when it reads the API."""
    if "reads" not in steps:
        return probe(app, container, steps, remove)
    return api.with_token(app, name, lambda token: probe(app, container, steps, remove, token))

"""Reading an instance's container in one exec: GitLab's backup lock, every project
repository's refs, and the API (READS, in Ruby).

A `docker exec` costs about 70 ms on the machines measured (the engine starts a process
through runc, whichever client asks), more than the work of most steps. So a probe does
the steps it is asked for, in that order, in one shell script. The script is a constant;
paths come as arguments and the API token on stdin, for the Ruby reading that ends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from girofle.backup import api
from girofle.backup.repos import REPOSITORIES, STATE_FUNCTIONS, RepositoryState, parse_states
from girofle.lifecycle.app import App

# GitLab's backup directory (gitlab_rails['backup_path']), git's and 0700 in the image.
GITLAB_BACKUPS = "/var/opt/gitlab/backups"
GITLAB_ARCHIVE_SUFFIX = "_gitlab_backup.tar"
# GitLab's backup/restore lock: Rails.root/tmp/backup_restore.pid (lib/tasks/gitlab/backup.rb).
GITLAB_BACKUP_PID_FILE = "/opt/gitlab/embedded/service/gitlab-rails/tmp/backup_restore.pid"

Step = Literal["lock", "refs", "reads"]

# $1 the steps, $2 the lock, $3 the repositories, $4 the Ruby reading; the rest are its
# arguments.
# - lock: when GitLab's pid file names a live process, print `busy <mtime>` and stop (a
#   process started by `docker exec` outlives a client that was killed);
# - refs: every project repository's state (its refs and the commits they reach);
# - reads: READS, whose JSON document is the last line.
SCRIPT = (
    STATE_FUNCTIONS
    + r"""
steps=" $1 "; pidfile=$2; repositories=$3; reads=$4
shift 4
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
if has refs; then mode=refs; project_states "$repositories"; fi
if has reads; then exec ruby -e "$reads" "$@"; fi
"""
)


@dataclass(frozen=True)
class Probe:
    """What a probe found: GitLab's lock (the pid file's mtime when a backup or restore
    runs), the repositories' states by path, and the API's reading."""

    busy: int | None = None
    repositories: dict[str, RepositoryState] = field(default_factory=dict)
    reading: api.Reading | None = None

    @property
    def token_status(self) -> int:
        """How GitLab answered Girofle's token (200 when the probe did not read the API)."""
        return 200 if self.reading is None else self.reading.token_status


def probe(app: App, container: str, steps: Sequence[Step], token: str = "") -> Probe:
    """Run ``steps`` in ``container`` in one exec."""
    argv = ["sh", "-c", SCRIPT, "sh", " ".join(steps), GITLAB_BACKUP_PID_FILE, REPOSITORIES]
    argv += [api.READS, *api.reads_arguments()]
    lines = app.engine.exec(container, argv, stdin=token).splitlines()
    if lines and lines[0].startswith("busy "):
        return Probe(busy=int(lines[0].split()[1] or 0))
    reading = None
    if "reads" in steps:
        reading = api.parse_reading(container, lines.pop() if lines else "")
    return Probe(None, parse_states(lines), reading)


def probe_instance(app: App, name: str, container: str, steps: Sequence[Step]) -> Probe:
    """``probe`` of instance ``name``, with Girofle's token when it reads the API."""
    if "reads" not in steps:
        return probe(app, container, steps)
    return api.with_token(app, name, lambda token: probe(app, container, steps, token))

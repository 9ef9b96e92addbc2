"""`girofle host setup`: a service account for Girofle, run once as root.

It creates the `girofle` system user and group, lets it reach the engine (the group that
owns the engine's socket: that is root-equivalent, see the README), gives it the home and
the data root (secrets 0700/0600), and, with the cron scheduler, installs its crontab.
Each step looks before it acts, so a second run changes nothing and says so.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from girofle.errors import GirofleError, UserError
from girofle.lifecycle.app import App

SHELL = "/usr/sbin/nologin"
VOLUMES = "mapping-volumes"  # <data_root>/noeud-gitlab-<name>/mapping-volumes


@dataclass(frozen=True)
class Account:
    """A user as /etc/passwd and /etc/group have it."""

    name: str
    uid: int
    gid: int
    groups: frozenset[str]


def find_account(name: str) -> Account | None:
    """The account ``name`` as the system knows it, with the groups it belongs to."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    groups = {g.gr_name for g in grp.getgrall() if name in g.gr_mem or g.gr_gid == entry.pw_gid}
    return Account(name, entry.pw_uid, entry.pw_gid, frozenset(groups))


def group_of_gid(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GirofleError(f"`{' '.join(argv)}` failed: {proc.stderr.strip() or proc.returncode}")


def setup_host(app: App, user: str = "girofle", owner: tuple[int, int] | None = None) -> list[str]:
    """Make the host ready for ``user`` to run Girofle; return what changed (nothing when
    it was ready). With ``owner`` (uid, gid), the account exists already (the wrapper's
    installer made it on the host): only the files and the schedule are seen to."""
    if os.geteuid() != 0:
        raise UserError("girofle host setup makes a user and changes owners: run it as root")
    if owner is not None:
        given = Account(user, owner[0], owner[1], frozenset())
        return _give_files(app, given) + _install_schedule(app, user, on_host=False)
    changes: list[str] = []
    account = find_account(user)
    if account is None:
        home = str(app.home.root)
        _run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", home,
              "--shell", SHELL, user])  # fmt: skip
        changes.append(f"created the system user and group {user}")
        account = find_account(user)
        if account is None:
            raise GirofleError(f"useradd did not make {user}")
    changes += _engine_access(account)
    changes += _give_files(app, account)
    changes += _install_schedule(app, user, on_host=True)
    return changes


def _engine_access(account: Account) -> list[str]:
    from girofle.render.compose import engine_socket  # the one reading of DOCKER_HOST

    socket = Path(engine_socket())
    gid = socket.stat().st_gid
    group = group_of_gid(gid)
    if group is None:
        # No group owns the socket by name (a container's /etc): make one with its gid.
        taken = {g.gr_name for g in grp.getgrall()}
        group = "docker" if "docker" not in taken else "girofle-engine"
        _run(["groupadd", "--system", "--gid", str(gid), group])
    if group in account.groups:
        return []
    _run(["usermod", "--append", "--groups", group, account.name])
    return [f"added {account.name} to {group}, the group of {socket} (root-equivalent)"]


def _data_root(app: App) -> Path:
    """girofle.yml's data root, or the default one before init."""
    return app.config.data_root if app.home.config_file.exists() else app.home.root / "data"


def _give_files(app: App, account: Account) -> list[str]:
    """The home and the data root owned by the account; secrets 0700 dirs, 0600 files."""
    changed = 0
    secrets = app.home.secrets
    for base in (app.home.root, _data_root(app)):
        if not base.exists():
            continue
        for directory, dirnames, filenames in os.walk(base):
            # GitLab's volumes belong to the users of its image (git, gitlab-psql...): the
            # directory stays as it is, and nothing below it is touched.
            if VOLUMES in dirnames:
                dirnames.remove(VOLUMES)
            for path in [Path(directory)] + [Path(directory) / n for n in dirnames + filenames]:
                info = path.lstat()
                if (info.st_uid, info.st_gid) != (account.uid, account.gid):
                    os.lchown(path, account.uid, account.gid)
                    changed += 1
                if path.is_relative_to(secrets) and not path.is_symlink():
                    wanted = 0o700 if path.is_dir() else 0o600
                    if info.st_mode & 0o777 != wanted:
                        path.chmod(wanted)
                        changed += 1
    if not changed:
        return []
    owned = f"{app.home.root} and {_data_root(app)}"
    return [f"gave {owned} to {account.name} ({changed} changes; GitLab's volumes untouched)"]


def _install_schedule(app: App, user: str, on_host: bool) -> list[str]:
    """With the cron scheduler, the backup jobs go into the user's crontab (sidecars need
    nothing: the engine runs them)."""
    if not app.home.config_file.exists() or app.config.backups.scheduler != "cron":
        return []
    from girofle.backup import cron

    if not on_host:
        return [f"crontab not installed from a container: run `girofle cron install` as {user}"]
    if cron.install(app, user=user, only_if_changed=True):
        return [f"installed the backup jobs in {user}'s crontab"]
    return []

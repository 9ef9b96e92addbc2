"""Git over SSH: host keys generated into /etc/gitlab at the first boot, a real sshd, and
gitlab-shell's forced command for each key the API registered."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

from standin import common, repos
from standin.common import event

KEY_TYPES = ("rsa", "ecdsa", "ed25519")
AUTHORIZED_KEYS = f"{common.DATA}/.ssh/authorized_keys"
SSHD_CONFIG = "/opt/standin/assets/sshd_config"
# What sshd's AllowUsers git may run: GitLab's forced command, one per key.
SHELL_COMMAND = "/opt/gitlab/bin/gitlab-shell"
_ORIGINAL = re.compile(r"^(git-upload-pack|git-receive-pack) '?/?([\w.-]+)/([\w.-]+?)(\.git)?'?$")


def ensure_host_keys() -> None:
    """init-container: generate each missing host key in /etc/gitlab, link it from /etc/ssh."""
    for kind in KEY_TYPES:
        path = f"{common.ETC}/ssh_host_{kind}_key"
        if not os.path.exists(path):
            print(f"Generating ssh_host_{kind}_key...", flush=True)
            subprocess.run(["ssh-keygen", "-q", "-f", path, "-N", "", "-t", kind], check=True)
            os.chmod(path, 0o600)
            event("boot", f"generated ssh_host_{kind}_key")
        for suffix in ("", ".pub"):
            link = f"/etc/ssh/ssh_host_{kind}_key{suffix}"
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(path + suffix, link)


def write_authorized_keys(db: dict[str, object]) -> None:
    """One line per registered key, forced to gitlab-shell (as gitlab:shell:setup writes)."""
    lines = [
        f'command="{SHELL_COMMAND} key-{key["id"]}",no-port-forwarding,no-X11-forwarding,'
        f"no-agent-forwarding,no-pty {key['key']}"
        for key in db.get("keys", [])  # type: ignore[attr-defined]
    ]
    directory = os.path.dirname(AUTHORIZED_KEYS)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    common.write_private(AUTHORIZED_KEYS, "".join(f"{line}\n" for line in lines))
    for path in (directory, AUTHORIZED_KEYS):
        common.chown_git(path)
    repos.write_project_paths(db)


def shell(argv: list[str]) -> int:
    """gitlab-shell key-N, run by sshd as git: greet, or run git-upload-pack on a project.

    Real gitlab-shell asks the API (/api/v4/internal/allowed) whether key N may; here the
    authorized_keys file, which only root writes and only from registered keys, is that
    answer (git cannot read the double's database).
    """
    key_id = argv[0].removeprefix("key-") if argv else ""
    if not key_id.isdigit():
        print("GitLab: Disallowed command", file=sys.stderr)
        return 1
    original = os.environ.get("SSH_ORIGINAL_COMMAND", "")
    if not original:
        print("Welcome to GitLab, @root!")
        return 0
    match = _ORIGINAL.match(original)
    if match is None:
        print("GitLab: Disallowed command", file=sys.stderr)
        return 1
    verb, namespace, project = match.group(1), match.group(2), match.group(3)
    repo = repos.shell_repo(project) if namespace == "root" else ""
    if not repo or not os.path.isdir(repo):
        print("GitLab: The project you were looking for could not be found.", file=sys.stderr)
        return 1
    if verb != "git-upload-pack":
        print("GitLab: this test double serves clones and fetches over SSH only", file=sys.stderr)
        return 1
    os.execvp("git", ["git", "-c", "safe.directory=*", "upload-pack", repo])
    return 1


if __name__ == "__main__":
    sys.exit(shell(shlex.split(" ".join(sys.argv[1:]))))

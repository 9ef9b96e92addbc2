"""The ssh command Girofle runs to learn why an sftp session did not start."""

from __future__ import annotations

import pytest

from girofle.backup.remote import ssh_command
from girofle.config import RemoteSettings


@pytest.mark.parametrize(
    ("repository", "sftp_command", "expected"),
    [
        ("sftp:backup@host:/srv/repo", None, "ssh host -l backup -s sftp"),
        ("sftp:host:/srv/repo", None, "ssh host -s sftp"),
        ("sftp://backup@host:2222//srv/repo", None, "ssh host -p 2222 -l backup -s sftp"),
        ("sftp:x@y:/r", "ssh -i '/run/girofle/ssh-key' -p 1 b@h -s sftp",
         "ssh -i /run/girofle/ssh-key -p 1 b@h -s sftp"),
        ("/srv/plain", None, ""),
    ],
)  # fmt: skip
def test_the_ssh_probe_runs_the_command_restic_would(
    repository: str, sftp_command: str | None, expected: str
) -> None:
    remote = RemoteSettings(repository=repository, sftp_command=sftp_command)
    assert " ".join(ssh_command(remote)) == expected

"""gitlab-rails runner, for the documented script that creates a personal access token.

The script is read from the command line, a file, or stdin (``-``); Girofle sends it on
stdin so that the token never shows in ``ps``. Other Ruby is refused: this is a test double.
"""

from __future__ import annotations

import os
import re
import sys

from standin import common
from standin.common import event

_USER = re.compile(r"User\.find_by_username\(\s*'([^']+)'\s*\)")
_SCOPES = re.compile(r"scopes:\s*\[([^\]]*)\]")
_NAME = re.compile(r"name:\s*'([^']*)'")
_TOKEN = re.compile(r"set_token\(\s*'([^']+)'\s*\)")


def runner(source: str) -> int:
    if source == "-":
        code = sys.stdin.read()
    elif os.path.isfile(source):
        with open(source) as f:
            code = f.read()
    else:
        code = source
    user, scopes, name, token = (p.search(code) for p in (_USER, _SCOPES, _NAME, _TOKEN))
    if not (user and scopes and name and token) or "personal_access_tokens.create" not in code:
        event("gitlab-rails", "runner refused an unsupported script")
        common.die(
            "gitlab-rails runner (test double): only the personal access token script is supported"
        )
    with common.database(write=True) as db:
        owner = next((u for u in db["users"] if u["username"] == user.group(1)), None)
        if owner is None:
            common.die(
                f"undefined method `personal_access_tokens' for nil (no user {user.group(1)})"
            )
        db["tokens"].append(
            {
                "user_id": owner["id"],
                "name": name.group(1),
                "scopes": re.findall(r"['\":]?(\w+)['\"]?", scopes.group(1)),
                "digest": common.token_digest(token.group(1)),
            }
        )
    event("gitlab-rails", f"runner created personal access token name={name.group(1)!r}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "runner":
        common.die("usage: gitlab-rails runner CODE|FILE|-")
    return runner(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

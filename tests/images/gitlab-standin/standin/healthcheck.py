"""/opt/gitlab/bin/gitlab-healthcheck: curl the URL that reconfigure wrote into the rc file.

Up to 19.0, a missing rc file is a failure. From 19.1.0 on it is a pass ("skipping HTTP
health check"; omnibus-gitlab commit cbd0c4421, config/software/gitlab-healthcheck.rb), so
a freshly created container is "healthy" before its first reconfigure ends. Each change of
result is logged, so tests can see when the container first passed its check.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from standin import common
from standin.common import event

STATE = f"{common.RUN}/health-last"


def main() -> int:
    if not os.path.exists(common.HEALTHCHECK_RC) and common.version_tuple() >= (19, 1):
        print(f"{common.HEALTHCHECK_RC} not found, skipping HTTP health check", file=sys.stderr)
        code = 0
    elif not os.path.exists(common.HEALTHCHECK_RC):
        print(f"gitlab-healthcheck: {common.HEALTHCHECK_RC} not found", file=sys.stderr)
        code = 1
    else:
        env: dict[str, str] = {}
        with open(common.HEALTHCHECK_RC) as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                env[key] = value
        url = shlex.split(env["url"])[0]
        flags = shlex.split(env.get("flags", "()").strip("()"))
        code = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", *sys.argv[1:], *flags, url]
        ).returncode
    result = "pass" if code == 0 else "fail"
    previous = open(STATE).read() if os.path.exists(STATE) else ""
    if previous != result:
        os.makedirs(common.RUN, exist_ok=True)
        with open(STATE, "w") as f:
            f.write(result)
        event("healthcheck", result)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""What a `girofle` command imported: the quick paths must not import the heavy modules."""

from __future__ import annotations

import subprocess
import sys

from tests.fleet import Fleet

# What the full command line imports and the quick path must not.
HEAVY = {"click", "pydantic", "yaml", "jinja2", "docker", "python_on_whales", "rich"}
# The entry point as the `girofle` script runs it, under -X importtime.
ENTRY = "import sys; from girofle.entry import main; sys.argv[0] = 'girofle'; main()"


def ls_with_imports(
    fleet: Fleet, *args: str, env: dict[str, str] | None = None, command: str = "ls"
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`girofle ls ARGS` (or another ``command``) and the top-level packages it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", ENTRY, command, *args],
        capture_output=True,
        text=True,
        env={**fleet.env, **(env or {})},
        check=False,
        timeout=120,
    )
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    proc.stderr = "\n".join(
        line for line in proc.stderr.splitlines() if not line.startswith("import time:")
    )
    return proc, imported

"""The `girofle` command's entry point: `ls` on its quick path when it can, everything
else (and `ls` when the quick path cannot answer) through the full command line."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run `girofle ARGS`."""
    try:
        run(sys.argv[1:])
    except BrokenPipeError:
        # The reader went away (`girofle ls | head`): Python's documented way to leave
        # quietly (the signal module's note on SIGPIPE), so that no traceback follows.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


def run(args: list[str]) -> None:
    """The quick `ls` or `routes`, or the full command line."""
    code = None
    if args[:1] == ["ls"]:
        from girofle.quick.ls import quick_ls

        code = quick_ls(args[1:])
    elif args[:1] == ["routes"]:
        from girofle.quick.routes import quick_routes

        code = quick_routes(args[1:])
    if code is not None:
        sys.exit(code)
    from girofle.cli import main as full_main

    full_main()

"""The `girofle` command's entry point: `ls` on its quick path when it can, everything
else (and `ls` when the quick path cannot answer) through the full command line."""

from __future__ import annotations

import sys


def main() -> None:
    """Run `girofle ARGS`."""
    args = sys.argv[1:]
    if args[:1] == ["ls"]:
        from girofle.quick.ls import quick_ls

        code = quick_ls(args[1:])
        if code is not None:
            sys.exit(code)
    from girofle.cli import main as full_main

    full_main()

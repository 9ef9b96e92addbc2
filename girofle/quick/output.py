"""Output with the standard library: data on stdout, tables plain or (on a terminal) rich."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO


def say(line: str, stream: TextIO | None = None) -> None:
    """One line on ``stream`` (stdout by default), flushed."""
    stream = stream or sys.stdout
    stream.write(line + "\n")
    stream.flush()


def emit_json(data: Any) -> None:
    """Data for scripts on stdout: indented, keys sorted."""
    say(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], wide: bool = False) -> None:
    """A table on stdout: on a terminal, rich, fitting its width by wrapping long cells
    (never cutting them), or one line per row with ``wide``; tab-separated otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console  # rich only when a person is watching
        from rich.table import Table

        rich_table = Table(box=None, pad_edge=False)
        for header in headers:
            rich_table.add_column(header, overflow="fold", no_wrap=wide)
        for row in rows:
            rich_table.add_row(*row)
        console = Console()
        if wide:
            widest = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
            console = Console(width=sum(widest) + len(headers))
        console.print(rich_table)
        return
    say("\t".join(h.upper() for h in headers))
    for row in rows:
        say("\t".join(row))

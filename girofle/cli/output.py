"""Output: data on stdout (JSON for scripts), progress and messages on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click


def progress(message: str) -> None:
    """A progress line on stderr (dim on a terminal, plain otherwise)."""
    if sys.stderr.isatty():
        from rich.console import Console  # rich only when a person is watching

        Console(stderr=True, highlight=False).print(f"[dim]{message}[/dim]")
    else:
        click.echo(message, err=True)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], wide: bool = False) -> None:
    """A table on stdout: on a terminal, rich, fitting its width by wrapping long cells
    (never cutting them), or one line per row with ``wide``; tab-separated otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console
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
    click.echo("\t".join(h.upper() for h in headers))
    for row in rows:
        click.echo("\t".join(row))

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


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on stdout: rich on a terminal, tab-separated columns otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        rich_table = Table(*headers, box=None, pad_edge=False)
        for row in rows:
            rich_table.add_row(*row)
        Console().print(rich_table)
        return
    click.echo("\t".join(h.upper() for h in headers))
    for row in rows:
        click.echo("\t".join(row))

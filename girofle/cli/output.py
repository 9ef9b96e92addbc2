"""Output: data on stdout (JSON for scripts), progress and messages on stderr."""

from __future__ import annotations

import sys

import click

from girofle.quick.output import emit_json, table

__all__ = ["emit_json", "progress", "table"]


def progress(message: str) -> None:
    """A progress line on stderr (dim on a terminal, plain otherwise)."""
    if sys.stderr.isatty():
        from rich.console import Console  # rich only when a person is watching

        Console(stderr=True, highlight=False).print(f"[dim]{message}[/dim]")
    else:
        click.echo(message, err=True)

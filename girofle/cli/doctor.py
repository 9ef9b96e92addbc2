"""girofle doctor."""

from __future__ import annotations

import click

from girofle.cli.common import json_option
from girofle.cli.output import emit_json, table
from girofle.errors import GirofleError
from girofle.lifecycle.app import App
from girofle.lifecycle.doctor import run_checks


@click.command()
@json_option
@click.pass_obj
def doctor(app: App, as_json: bool) -> None:
    """Check the engine, Compose, disk, addresses and every allocated port."""
    checks = run_checks(app)
    if as_json:
        emit_json([{"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks])
    else:
        table(
            ["check", "ok", "detail"],
            [[c.name, "ok" if c.ok else "FAIL", c.detail] for c in checks],
        )
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise GirofleError(f"doctor found {len(failed)} problem(s): {', '.join(failed)}")

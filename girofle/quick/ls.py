"""`girofle ls` on the quick path: girofle.yml's view, inventory.json and one request to the
engine, with the standard library. Whenever it cannot answer exactly as the full command
would, it says so (None) and the full command runs instead."""

from __future__ import annotations

import json
import sys
from typing import Any

from girofle.docker.ps import gitlab_containers
from girofle.errors import GirofleError, UserError
from girofle.home import INVENTORY_VERSION, Home, check_user, needs_migration
from girofle.quick import view
from girofle.quick.output import say
from girofle.quick.rows import fleet_rows, print_ls

# The options the quick path knows; anything else (--help, a typo) is the full CLI's.
FLAGS = {"--json": "as_json", "--all": "show_all", "--wide": "wide"}


def quick_ls(args: list[str]) -> int | None:
    """Run `girofle ls ARGS` and return its exit code, or None when the full path must
    (other arguments, a home it would warn about or migrate, no fresh view of girofle.yml,
    a swarm, an inventory of another format)."""
    if len(set(args)) != len(args) or not set(args) <= FLAGS.keys():
        return None
    options = {attribute: flag in args for flag, attribute in FLAGS.items()}
    home = Home.from_env()
    try:
        if check_user(home) is not None or needs_migration(home):
            return None
    except UserError:
        return None
    settings = view.recall(home)
    if settings is None or settings.get("target") != "compose":
        return None
    inventory = _read_inventory(home)
    if inventory is None:
        return None
    try:
        by_name = gitlab_containers(settings["home_id"])
    except GirofleError as err:
        say(f"girofle: {err}", sys.stderr)
        return err.exit_code
    try:
        rows = fleet_rows(inventory, by_name, settings)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # a record this path does not read as the full one would
    if not options["show_all"]:
        rows = [r for r in rows if r.state != "decommissioned"]
    print_ls(rows, options["as_json"], options["wide"], nodes=False)
    return 0


def _read_inventory(home: Home) -> dict[str, Any] | None:
    """inventory.json as written (an empty one when there is none), or None when it cannot
    be read or is of another format: the full path says why."""
    try:
        data = json.loads(home.inventory_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"version": INVENTORY_VERSION}
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != INVENTORY_VERSION:
        return None
    return data

"""`girofle ls` on the quick path: girofle.yml's view, inventory.json and one request to the
engine, with the standard library. Whenever it cannot answer exactly as the full command
would, it says so (None) and the full command runs instead."""

from __future__ import annotations

import json
import sys
from typing import Any

from girofle.docker.ps import gitlab_containers, swarm_gitlab_rows
from girofle.errors import GirofleError, UserError
from girofle.home import INVENTORY_VERSION, Home, check_user, needs_migration
from girofle.labels import RECORD_LABEL
from girofle.quick import view
from girofle.quick.output import say
from girofle.quick.rows import fleet_rows, print_ls

# The options the quick path knows; anything else (--help, a typo) is the full CLI's.
FLAGS = {"--json": "as_json", "--all": "show_all", "--wide": "wide"}


def quick_ls(args: list[str]) -> int | None:
    """Run `girofle ls ARGS` and return its exit code, or None when the full path must
    (other arguments, a home it would warn about or migrate, no fresh view of girofle.yml,
    an engine that is not local, or not a swarm manager on a swarm, an inventory of
    another format)."""
    if len(set(args)) != len(args) or not set(args) <= FLAGS.keys():
        return None
    options = {attribute: flag in args for flag, attribute in FLAGS.items()}
    home = quick_home()
    settings = None if home is None else view.recall(home)
    if home is None or settings is None or settings.get("target") not in ("compose", "swarm"):
        return None
    inventory = read_inventory_json(home)
    if inventory is None:
        return None
    on_swarm = settings["target"] == "swarm"
    try:
        if on_swarm:  # a manager's services and tasks, asked on its local socket
            found = swarm_gitlab_rows(settings["home_id"])
            if found is None:
                return None
            by_name = found
        else:
            by_name = gitlab_containers(settings["home_id"])
    except GirofleError as err:
        if on_swarm:
            return None  # not a manager, say: the full path says how to reach one
        say(f"girofle: {err}", sys.stderr)
        return err.exit_code
    known = inventory.get("instances") or {}
    if any(name not in known and RECORD_LABEL in row.labels for name, row in by_name.items()):
        return None  # instances this inventory lacks: the full path reads their records
    try:
        rows = fleet_rows(inventory, by_name, settings)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # a record this path does not read as the full one would
    if not options["show_all"]:
        rows = [r for r in rows if r.state != "decommissioned"]
    print_ls(rows, options["as_json"], options["wide"], nodes=on_swarm)
    return 0


def quick_home() -> Home | None:
    """The home, when a quick command may read it: None for one the full path would warn
    about (another user's) or migrate."""
    home = Home.from_env()
    try:
        if check_user(home) is not None or needs_migration(home):
            return None
    except UserError:
        return None
    return home


def read_inventory_json(home: Home) -> dict[str, Any] | None:
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

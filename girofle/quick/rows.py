"""The rows of `girofle ls` and how they print, shared by the quick and the full path."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

from girofle.docker.ps import ContainerRow
from girofle.quick.output import emit_json, say, table


class InstanceStatus(NamedTuple):
    """One row of `girofle ls`."""

    name: str
    state: str
    urls: list[str]
    ssh: str
    http: str | None
    image: str
    version: str | None
    last_backup: dt.datetime | None
    last_backup_result: str | None
    # The command that finishes an unfinished restore onto this instance.
    finish_restore: str | None = None
    # An upgrade under way (or stopped): its target version.
    upgrade_target: str | None = None
    # The last drill of its backups, as the inventory records it (JSON).
    last_drill: dict[str, Any] | None = None
    # The swarm node that runs it (target: swarm).
    node: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "urls": self.urls,
            "ssh": self.ssh,
            "http": self.http,
            "image": self.image,
            "version": self.version,
            "last_backup": self.last_backup.isoformat() if self.last_backup else None,
            "last_backup_result": self.last_backup_result,
            "finish_restore": self.finish_restore,
            "upgrade_target": self.upgrade_target,
            "last_drill": self.last_drill,
            "node": self.node,
        }


def observed_state(recorded: str, container: ContainerRow | None) -> str:
    """healthy / starting / unhealthy / stopped / failed / missing / decommissioned, from
    the inventory's state and what the engine says of the instance's container."""
    if recorded == "decommissioned":
        return "decommissioned"
    if container is None:
        return "missing"
    if container.health == "node down":
        return "node down"
    if container.running:
        return container.health or "running"
    return "failed" if recorded == "failed" else "stopped"


def running(failed: str | None, pid: int | None) -> bool:
    """Whether the journalled operation of process ``pid`` goes on: not failed, and its
    process alive (another user's counts)."""
    if failed is not None or pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def restore_state(failed: str | None, pid: int | None) -> str:
    """restoring while its process lives, else restore-failed (failed or killed)."""
    return "restoring" if running(failed, pid) else "restore-failed"


def upgrade_state(failed: str | None, pid: int | None) -> str:
    """upgrading while its process lives, else upgrade-failed (failed or killed)."""
    return "upgrading" if running(failed, pid) else "upgrade-failed"


def finish_restore_command(source: str, backup_id: str, target: str) -> str:
    """The command that finishes a restore of ``source``'s backup onto ``target``."""
    rename = f" --as {target}" if target != source else ""
    return f"girofle restore {source} --backup {backup_id}{rename}"


def fleet_rows(
    inventory: dict[str, Any], by_name: dict[str, ContainerRow], settings: dict[str, Any]
) -> list[InstanceStatus]:
    """The rows of `ls`, from the inventory's JSON form (inventory.json as written, or the
    validated inventory dumped) and the engine's rows by instance: one implementation for
    the quick and the full path."""
    instances: dict[str, dict[str, Any]] = inventory.get("instances") or {}
    restores = inventory.get("restores") or {}
    upgrades = inventory.get("upgrades") or {}
    drills = inventory.get("drills") or {}
    rows = []
    for name in sorted(instances):
        instance = instances[name]
        restore = restores.get(name)
        upgrade = upgrades.get(name)
        row = by_name.get(name)
        if restore:
            state = restore_state(restore.get("failed"), restore.get("pid"))
        elif upgrade:
            state = upgrade_state(upgrade.get("failed"), upgrade.get("pid"))
        else:
            state = observed_state(instance["state"], row)
        http = instance.get("http")
        rows.append(
            InstanceStatus(
                name=name,
                state=state,
                urls=instance_urls(
                    settings, name, instance["projects"], _pair(http) if http else None
                ),
                ssh=_pair(instance["ssh"]),
                http=_pair(http) if http else None,
                image=instance["image"],
                version=instance.get("version"),
                last_backup=_when(instance.get("last_backup")),
                last_backup_result=instance.get("last_backup_result"),
                finish_restore=(
                    finish_restore_command(restore["source"], restore["backup_id"], name)
                    if restore
                    else None
                ),
                upgrade_target=upgrade["target"] if upgrade else None,
                last_drill=drills.get(name),
                node=row.node if row else None,
            )
        )
    return rows


def instance_urls(
    settings: dict[str, Any], name: str, projects: list[str], http: str | None
) -> list[str]:
    """The web URLs of an instance: its own (address, port) pair in `ports` routing, else
    one URL per project through the edge (``settings``: model.quick_settings)."""
    if settings["routing"] == "ports":
        assert http is not None, f"{name} has no HTTP pair in ports routing"
        return [f"http://{http}/"]
    template: str = settings["url_template"]
    return [template.format(instance=name, project=p) for p in projects]


def _pair(endpoint: dict[str, Any]) -> str:
    return f"{endpoint['address']}:{endpoint['port']}"


def _when(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def last_backup_cell(when: dt.datetime | None, result: str | None) -> str:
    """The time of the last complete backup and, when the last attempt failed, that."""
    cell = when.strftime("%Y-%m-%d %H:%M:%SZ") if when else "-"
    if result and result != "ok":
        cell += " (last attempt failed)"
    elif result == "ok":
        cell += " ok"
    return cell


def last_drill_cell(record: dict[str, Any] | None) -> str:
    """When, which backup, and ok or the first failure."""
    if record is None:
        return "-"
    at = dt.datetime.fromisoformat(record["at"])
    verdict = "ok" if record["ok"] else f"FAILED: {record['detail']}"
    return f"{at.strftime('%Y-%m-%d %H:%M:%SZ')} {record['backup_id']} {verdict}"


def print_ls(rows: Sequence[InstanceStatus], as_json: bool, wide: bool, nodes: bool) -> None:
    """`girofle ls`'s output: JSON, or the table, then a line on stderr per instance whose
    upgrade or restore stopped half-way."""
    if as_json:
        emit_json([row.as_json() for row in rows])
        return
    headers = ["name", "state", *(["node"] if nodes else []), "urls", "ssh", "http"]
    headers += ["image", "version", "last backup", "last drill"]
    table(
        headers,
        [
            [
                r.name,
                r.state,
                *([r.node or "-"] if nodes else []),
                " ".join(r.urls),
                r.ssh,
                r.http or "-",
                r.image,
                (r.version or "-") + (f" -> {r.upgrade_target}" if r.upgrade_target else ""),
                last_backup_cell(r.last_backup, r.last_backup_result),
                last_drill_cell(r.last_drill),
            ]
            for r in rows
        ],
        wide=wide,
    )
    for r in rows:
        if r.state == "upgrade-failed" and r.upgrade_target:
            say(
                f"{r.name}: its upgrade to {r.upgrade_target} stopped; rerun "
                f"`girofle upgrade {r.name} --to {r.upgrade_target}`",
                sys.stderr,
            )
        if r.state == "restore-failed" and r.finish_restore:
            say(f"{r.name}: its restore did not finish; run `{r.finish_restore}`", sys.stderr)

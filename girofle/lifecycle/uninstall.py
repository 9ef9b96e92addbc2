"""Removing a whole home: every instance, the edge, the crontab jobs, and with ``purge``
the home's files and the instances' data. Girofle's own backups (sauvegardes/) stay:
`girofle restore --girofle` needs them to bring the home back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from girofle.backup.home import sauvegardes
from girofle.errors import GirofleError, UserError
from girofle.inventory import read_inventory
from girofle.lifecycle import remove
from girofle.lifecycle.app import App
from girofle.lifecycle.init import edge_down
from girofle.lifecycle.plan import Plan


def plan_uninstall(app: App, purge: bool, final_backup: bool) -> Plan:
    """What uninstall would do, changing nothing."""
    if not app.home.config_file.exists():
        raise UserError(f"{app.home.root} holds no Girofle home: nothing to uninstall")
    plan = Plan()
    for name, instance in sorted(read_inventory(app.home).instances.items()):
        if instance.state == "running" and final_backup:
            plan.actions.append(f"take a final backup of {name}")
        if instance.state != "decommissioned":
            plan.actions.append(f"stop and remove the containers and network of {name}")
    plan.actions.append("remove the edge (Traefik and its proxy network)")
    plan.actions.append("remove this home's jobs from the crontab, if any")
    if purge:
        plan.actions.append(
            f"delete every instance's data under {app.config.data_root}, and {app.home.root}"
        )
        plan.actions.append(f"keep Girofle's own backups in {sauvegardes(app.config.data_root)}")
    return plan


def uninstall(app: App, purge: bool, final_backup: bool = True) -> Plan:
    """Remove the home from the engine (and, with ``purge``, from the disk). Each step is
    one a rerun repeats harmlessly, so an interrupted uninstall converges when rerun."""
    plan = plan_uninstall(app, purge, final_backup)
    app.engine.ping()
    for name in sorted(read_inventory(app.home).instances):
        remove.rm(app, name, purge=purge, final_backup=final_backup)
    edge_down(app)
    _remove_cron_jobs(app)
    if purge:
        app.progress(f"deleting {app.home.root}")
        remove_all_but(app.home.root, sauvegardes(app.config.data_root))
    return plan


def remove_all_but(root: Path, keep: Path) -> None:
    """Delete ``root``, except ``keep`` (and the directories leading to it) when it lies
    inside: the default data root is <home>/data, where Girofle's own backups live."""
    if not keep.is_relative_to(root) or not keep.exists():
        shutil.rmtree(root)
        return
    for child in root.iterdir():
        if child == keep:
            continue
        if keep.is_relative_to(child):
            remove_all_but(child, keep)
        elif child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _remove_cron_jobs(app: App) -> None:
    from girofle.backup import cron

    if shutil.which("crontab") is None:
        return  # no cron on this host: Girofle cannot have installed jobs
    try:
        removed = cron.remove(app)
    except (GirofleError, subprocess.SubprocessError) as err:
        raise GirofleError(f"the crontab could not be cleaned: {err}") from None
    if removed:
        app.progress(f"removed {removed} backup job(s) from the crontab")

"""Restore drills: a backup restored apart from everything, checked, and removed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.backup.test_local_backup_restore import (
    backup_dir,
    other_db_key,
    ported_fleet,
    rewrite_secrets,
    seed,
)
from tests.fleet import Fleet
from tests.helpers import wait_until

pytestmark = pytest.mark.engine

DRILL_LABEL = "io.girofle.drill"


def drill_leftovers(engine: DockerClient, fleet: Fleet) -> list[str]:
    """Containers, networks and volumes a drill of this home left behind, and its files."""
    filters = [("label", DRILL_LABEL)]
    left = [c.name for c in engine.container.list(all=True, filters=filters)]
    left += [n.name for n in engine.network.list(filters=filters)]
    left += [str(p) for p in fleet.data_root.glob("noeud-gitlab-*/.drill")]
    return [x for x in left if fleet.home_id in x or x.startswith(str(fleet.data_root))]


def live_fingerprint(engine: DockerClient, fleet: Fleet, name: str) -> tuple[object, ...]:
    """What a drill must not change: the live container and everything GitLab logged."""
    container = engine.container.inspect(f"gitlab-{name}")
    return container.id, container.state.started_at, len(fleet.events(name))


def test_a_drill_of_a_good_backup_passes_apart_from_the_live_instance(
    make_fleet: Callable[[], Fleet], engine: DockerClient, tmp_path: Path
) -> None:
    fleet, name = ported_fleet(make_fleet)
    seed(fleet, name, tmp_path)
    backup_id = fleet.run("backup", name).stdout.strip()
    before = live_fingerprint(engine, fleet, name)
    proc = fleet.popen("drill", name, "--json")
    throwaway = f"girofle-drill-{fleet.home_id}-{name}"
    # While it runs: no published port, and a network with no way out (nor in).
    assert wait_until(lambda: engine.container.exists(throwaway), 120)
    inspected = engine.container.inspect(throwaway)
    assert not inspected.host_config.port_bindings
    assert list(inspected.network_settings.networks) == [throwaway]
    assert engine.network.inspect(throwaway).internal
    assert not any(k.startswith("traefik") for k in inspected.config.labels or {})
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    (report,) = json.loads(out)
    assert (report["backup"], report["ok"], report["detail"]) == (backup_id, True, "ok")
    assert {"fetch", "boot", "restore", "checks", "total"} <= set(report["durations"])
    assert live_fingerprint(engine, fleet, name) == before
    assert drill_leftovers(engine, fleet) == []
    drilled = fleet.ls()[0]["last_drill"]
    assert (drilled["backup_id"], drilled["ok"], drilled["source"]) == (backup_id, True, "local")


def test_a_drill_with_the_wrong_secrets_fails_names_why_and_leaves_nothing(
    make_fleet: Callable[[], Fleet], engine: DockerClient, tmp_path: Path
) -> None:
    fleet, name = ported_fleet(make_fleet)
    seed(fleet, name, tmp_path)
    backup_id = fleet.run("backup", name).stdout.strip()
    rewrite_secrets(backup_dir(fleet, name, backup_id), other_db_key)
    before = live_fingerprint(engine, fleet, name)
    proc = fleet.run("drill", name, check=False, timeout=600)
    assert proc.returncode == 6
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("girofle:")]
    assert f"the drill of {name} {backup_id} failed" in line
    assert "gitlab:doctor:secrets cannot decrypt" in line and "ApplicationSetting: 1" in line
    assert live_fingerprint(engine, fleet, name) == before
    assert drill_leftovers(engine, fleet) == []
    (row,) = fleet.ls()
    assert row["state"] == "healthy"
    assert row["last_drill"]["ok"] is False
    assert "cannot decrypt" in row["last_drill"]["detail"]


def test_a_drill_finds_a_repository_that_is_not_what_the_backup_recorded(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    fleet, name = ported_fleet(make_fleet)
    commits = seed(fleet, name, tmp_path)
    backup_id = fleet.run("backup", name).stdout.strip()
    # A manifest that says the branch was elsewhere (re-signed: only the refs are wrong).
    manifest_file = backup_dir(fleet, name, backup_id) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["projects"][0]["refs"]["refs/heads/main"] = commits[1]
    manifest_file.write_text(json.dumps(manifest))
    proc = fleet.run("drill", name, "--json", check=False, timeout=600)
    assert proc.returncode == 6
    (report,) = json.loads(proc.stdout)
    assert report["detail"] == "root/demo: refs differ from the backup's (refs/heads/main)"

"""rm decommissions one instance only; --dry-run changes nothing; stop keeps data."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from python_on_whales import DockerClient

from tests.fleet import Fleet, instance_name
from tests.helpers import HOME_LABEL

pytestmark = pytest.mark.engine


def test_rm_touches_only_its_instance_and_purge_asks(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance")
    keep, gone = instance_name("keep"), instance_name("gone")
    fleet.run("new-stack", keep)
    fleet.run("new-stack", gone)
    data = fleet.data_root / f"noeud-gitlab-{gone}"
    marker = data / "mapping-volumes/data/git-data/repositories"
    assert marker.is_dir()

    dry = fleet.run("rm", gone, "--purge", "--dry-run")
    assert "stop and remove the containers" in dry.stdout and str(data) in dry.stdout
    assert engine.container.inspect(f"gitlab-{gone}").state.running

    fleet.run("rm", gone)
    listed = json.loads(fleet.run("ls", "--all", "--json").stdout)
    assert {r["name"]: r["state"] for r in listed} == {keep: "healthy", gone: "decommissioned"}
    assert [r["name"] for r in fleet.ls()] == [keep]  # without --all: what runs or could
    assert not engine.container.list(all=True, filters=[("name", f"^/?gitlab-{gone}$")])
    assert not engine.network.list(filters=[("name", f"girofle-{fleet.home_id}-{gone}")])
    assert marker.is_dir(), "rm without --purge must keep the data"

    refused = fleet.run("rm", gone, "--purge", check=False)  # no TTY, no --yes: confirm aborts
    assert refused.returncode != 0 and data.exists()
    fleet.run("rm", gone, "--purge", "--yes")
    assert not data.exists()
    assert not (fleet.root / "stacks" / gone).exists()
    assert [r["name"] for r in fleet.ls()] == [keep]
    assert engine.container.inspect(f"gitlab-{keep}").state.health.status == "healthy"  # type: ignore[union-attr]
    labels = [("label", f"{HOME_LABEL}={fleet.home_id}"), ("label", "io.girofle.role=gitlab")]
    assert [c.name for c in engine.container.list(all=True, filters=labels)] == [f"gitlab-{keep}"]  # type: ignore[arg-type]


def test_dry_runs_change_nothing(make_fleet: Callable[[], Fleet], engine: DockerClient) -> None:
    fleet = make_fleet()
    plan = fleet.run("init", "--yes", "--dry-run", "-c", f"home_id={fleet.home_id}")
    assert "girofle.yml" in plan.stdout and "start Traefik" in plan.stdout
    assert not fleet.root.exists()
    fleet.init("--no-first-instance")
    name = instance_name()
    before = fleet.files()
    plan = fleet.run("new-stack", name, "--dry-run")
    assert f"new  {fleet.root}/stacks/{name}/docker-compose.yml" in plan.stdout
    assert f"create container gitlab-{name}" in plan.stdout
    assert fleet.files() == before
    assert not engine.container.list(all=True, filters=[("name", f"^/?gitlab-{name}$")])
    fleet.run("new-stack", name)
    assert fleet.run("reconfigure", name, "--dry-run").stdout == f"# {name}\nnothing to do\n"
    plan = fleet.run("reconfigure", name, "--dry-run", "--set", "gitlab_rails.time_zone=UTC")
    assert "+gitlab_rails['time_zone'] = 'UTC'" in plan.stdout
    plan = fleet.run(
        "reconfigure", name, "--dry-run", "--set-json", 'gitlab_rails.env={"TZ": "010"}'
    )
    assert "+gitlab_rails['env'] = {'TZ' => '010'}" in plan.stdout
    assert "time_zone" not in (fleet.root / "stacks" / name / "gitlab.rb").read_text()


def test_stop_start_and_reconfigure_over_the_fleet(make_fleet: Callable[[], Fleet]) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance")
    names = sorted(instance_name() for _ in range(2))
    for name in names:
        fleet.run("new-stack", name)
    fleet.run("stop", names[0])
    assert {r["name"]: r["state"] for r in fleet.ls()} == {names[0]: "stopped", names[1]: "healthy"}
    fleet.run("start", names[0])
    summary = fleet.run("reconfigure", "--all", "--set", "gitlab_rails.time_zone=UTC")
    assert [line.split("\t")[:2] for line in summary.stdout.splitlines()[1:]] == [
        [n, "ok"] for n in names
    ]
    for name in names:
        rb = (fleet.root / "stacks" / name / "gitlab.rb").read_text()
        assert "gitlab_rails['time_zone'] = 'UTC'" in rb
        applied = (
            fleet.data_root / f"noeud-gitlab-{name}/mapping-volumes/log/standin/applied-config.json"
        )
        assert '"time_zone": "UTC"' in applied.read_text()
    assert {r["state"] for r in fleet.ls()} == {"healthy"}
    # The whole fleet and its edge, down and up again (what `make down` / `make up` run).
    fleet.run("stop", "--all")
    assert {r["state"] for r in fleet.ls()} == {"stopped"}
    fleet.run("start", "--all")
    assert {r["state"] for r in fleet.ls()} == {"healthy"}
    host = fleet.ls()[0]["urls"][0].split("//")[1].split(":")[0]
    assert fleet.edge(host).status == 200

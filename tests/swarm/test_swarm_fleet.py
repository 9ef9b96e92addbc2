"""The fleet on a real 2-node Docker Swarm (this host's engine the manager, a second dockerd
the worker): placement across nodes, routing through Traefik's swarm provider on the
manager, work in an instance on the worker through Swarm jobs, and `ls` with nodes."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from girofle.config import ToolsSettings
from girofle.tools_image import ensure_tools_image
from tests.backup.test_local_backup_restore import TOKEN, TOKEN_SCRIPT
from tests.backup.test_remote import sftp_server, write_password
from tests.fleet import TOOLS_IMAGE, Fleet, instance_name
from tests.harness.swarm import TwoNodeSwarm, missing_tools, two_node_swarm
from tests.helpers import git
from tests.images.build import BuiltImages
from tests.imports import HEAVY, ls_with_imports
from tests.lifecycle.test_fleet import assert_reconfigured_after_healthy

# The engine becomes a swarm manager for this module: nothing else may run meanwhile.
pytestmark = [pytest.mark.engine, pytest.mark.serial]


@pytest.fixture(scope="module")
def swarm(engine: DockerClient, images: BuiltImages) -> Iterator[TwoNodeSwarm]:
    missing = missing_tools()
    if missing or os.geteuid() != 0:
        message = f"a 2-node swarm needs root and {', '.join(missing) or 'nothing more'}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # Jobs on the nodes run Girofle's tools image: every node must hold it.
    ensure_tools_image(ToolsSettings(base_image=images.base, image=TOOLS_IMAGE))
    with two_node_swarm([images.standin, TOOLS_IMAGE]) as made:
        yield made


def swarm_fleet(make_fleet: Callable[[], Fleet], *extra: str) -> Fleet:
    fleet = make_fleet()
    fleet.init(
        "--no-first-instance",
        "-c",
        "target=swarm",
        # Scheduled backups on a swarm are not there yet; the suite's remote has no place here.
        "-c",
        "backups.scheduler=none",
        "-c",
        "instance_networks.pool=10.234.0.0/16",
        *extra,
    )
    return fleet


@contextlib.contextmanager
def fleet_with_remote(
    swarm: TwoNodeSwarm,
    make_fleet: Callable[[], Fleet],
    engine: DockerClient,
    images: BuiltImages,
    directory: Path,
) -> Iterator[Fleet]:
    """A swarm home whose remote is an sftp server on the manager's address, which both
    nodes reach."""
    with sftp_server(engine, images, directory, swarm.manager_address) as remote:
        fleet = swarm_fleet(make_fleet, *remote.config_args())
        write_password(fleet, remote)
        yield fleet


def worker_container(swarm: TwoNodeSwarm, name: str) -> str:
    """The ID of instance ``name``'s container, asked of the worker's own engine."""
    ids = swarm.worker(
        "ps", "-q", "--filter", f"label=io.girofle.instance={name}", "--filter", "status=running"
    ).stdout.split()
    assert len(ids) == 1, f"{name}: {ids} on the worker"
    return ids[0]


def worker_events(swarm: TwoNodeSwarm, name: str) -> list[tuple[str, str, str]]:
    """The stand-in's event log of an instance that runs on the worker (its log volume is
    on the worker's disk, not this host's)."""
    out = swarm.worker(
        "exec", worker_container(swarm, name), "cat", "/var/log/gitlab/standin/events.log"
    ).stdout
    return [tuple(line.split(" ", 2)) for line in out.splitlines()]  # type: ignore[misc]


def on_worker_disk(swarm: TwoNodeSwarm, path: Path) -> bool:
    """Whether ``path`` exists on the worker's disk (a bind mount whose source is missing
    is refused; -v would create it)."""
    proc = swarm.worker(
        "run", "--rm", "--mount", f"type=bind,src={path},dst=/x", TOOLS_IMAGE, "true", check=False
    )
    assert proc.returncode == 0 or "bind source path does not exist" in proc.stderr, proc.stderr
    return proc.returncode == 0


def service_tasks(fleet: Fleet, name: str) -> list[str]:
    """Every task of instance ``name``'s service Swarm remembers, the ended ones too."""
    service = f"girofle-{fleet.home_id}-{name}_gitlab"
    return subprocess.run(
        ["docker", "service", "ps", "-q", service], capture_output=True, text=True, check=True
    ).stdout.split()


def through_the_edge(fleet: Fleet, name: str) -> tuple[list[str], str]:
    """git's options to reach instance ``name`` through Traefik on the manager (resolved
    to 127.0.0.1, Girofle's CA trusted), and the URL of root/demo.git with root's password."""
    (row,) = [r for r in fleet.ls() if r["name"] == name]
    host = row["urls"][0].split("//")[1].split(":")[0]
    port = fleet.https_port
    password = (fleet.root / "secrets" / "instances" / name / "root_password").read_text().strip()
    # GIT_SSL_CAINFO, not http.sslCAInfo: the variable, which CI machines may set, wins.
    options = ["-c", f"http.curloptResolve={host}:{port}:127.0.0.1"]
    return options, f"https://root:{password}@{host}:{port}/root/demo.git"


def seed_on_worker(fleet: Fleet, swarm: TwoNodeSwarm, name: str, workdir: Path) -> list[str]:
    """A project with a wiki page (through the API, in the container on the worker) and
    three commits pushed through the manager's edge; the commit ids."""
    container = worker_container(swarm, name)
    swarm.worker("exec", "-i", container, "gitlab-rails", "runner", "-", stdin=TOKEN_SCRIPT)
    for path, body in (
        ("/projects", {"name": "demo"}),
        ("/projects/root%2Fdemo/wikis", {"title": "Runbook", "content": "# How we restore"}),
    ):
        status = swarm.worker(
            "exec", "-i", container, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
            "-H", "@-", "-H", "Content-Type: application/json", "-d", json.dumps(body),
            f"http://localhost/api/v4{path}",
            stdin=f"PRIVATE-TOKEN: {TOKEN}\n",
        ).stdout  # fmt: skip
        assert status == "201", (path, status)
    repo = workdir / "demo"
    git("init", "-q", "-b", "main", str(repo))
    for i in range(3):
        commit_to(repo, f"{i}\n")
    options, url = through_the_edge(fleet, name)
    git_ok(fleet, *options, "push", "-q", url, "main", cwd=repo)
    return git("rev-list", "main", cwd=repo).split()


def git_ok(fleet: Fleet, *args: str, cwd: Path | None = None) -> None:
    """git trusting Girofle's CA, failing the test with what git said."""
    env = {**os.environ, "GIT_SSL_CAINFO": str(fleet.ca_file)}
    argv = ["git", *args]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def wiki_titles(fleet: Fleet, name: str) -> list[str]:
    """The wiki pages of root/demo, asked of instance ``name``'s API on the manager (with
    the token its restored database holds)."""
    (container,) = DockerClient().container.list(
        filters=[("label", f"io.girofle.instance={name}"), ("status", "running")]
    )
    out = subprocess.run(
        ["docker", "exec", "-i", container.id, "curl", "-sS", "-H", "@-",
         "http://localhost/api/v4/projects/root%2Fdemo/wikis"],
        input=f"PRIVATE-TOKEN: {TOKEN}\n", capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [page["title"] for page in json.loads(out)]


def commit_to(repo: Path, content: str) -> None:
    (repo / "file.txt").write_text(content)
    git("add", "file.txt", cwd=repo)
    git("commit", "-q", "-m", f"write {content.strip()}", cwd=repo)


def ssh_banner(address: str, port: int) -> bytes:
    with socket.create_connection((address, port), timeout=10) as conn:
        return conn.recv(64)


def test_four_instances_across_two_nodes_answer_through_the_managers_edge(
    swarm: TwoNodeSwarm, make_fleet: Callable[[], Fleet]
) -> None:
    fleet = swarm_fleet(make_fleet)
    asked = instance_name("w")
    fleet.run("new-stack", asked, "--node", swarm.worker_hostname)
    placed = [instance_name(p) for p in "abc"]
    for name in placed:  # Girofle balances: the manager first, then one each
        fleet.run("new-stack", name)
    rows = {row["name"]: row for row in fleet.ls()}
    assert {row["state"] for row in rows.values()} == {"healthy"}, rows
    nodes = [row["node"] for row in rows.values()]
    assert nodes.count(swarm.worker_hostname) == 2, nodes
    manager = {n for n in nodes if n != swarm.worker_hostname}
    assert len(manager) == 1 and None not in manager, nodes
    listed = {n["hostname"]: n for n in json.loads(fleet.run("nodes", "--json").stdout)}
    assert sorted(listed[swarm.worker_hostname]["instances"]) == sorted(
        n for n, r in rows.items() if r["node"] == swarm.worker_hostname
    )
    assert asked in listed[swarm.worker_hostname]["instances"]
    assert {n["state"] for n in listed.values()} == {"ready"}
    # The first ls (full) left the view: ls now asks the manager's socket itself, with no
    # heavy import, and prints what the full command prints, nodes and all.
    for args in (["--json"], ["--wide"]):
        quick, imported = ls_with_imports(fleet, *args)
        assert not imported & HEAVY, sorted(imported & HEAVY)
        assert quick.stdout == fleet.run("--debug", "ls", *args).stdout
    # The swarm holds the fleet: without this host's inventory, ls says the same.
    facts = ("name", "state", "node", "urls", "ssh", "image")
    inventory = fleet.root / "inventory.json"
    kept = inventory.read_bytes()
    inventory.unlink()
    try:
        without = {row["name"]: {k: row[k] for k in facts} for row in fleet.ls()}
    finally:
        inventory.write_bytes(kept)
    assert without == {name: {k: row[k] for k in facts} for name, row in rows.items()}

    for name, row in rows.items():
        (url,) = row["urls"]
        host = url.split("//")[1].split(":")[0]
        answer = fleet.edge(host)  # Traefik on the manager, Girofle's CA
        assert answer.status == 200, f"{host}: {answer}"
        assert f"https://{host}" in answer.body  # from this very instance
        address, port = row["ssh"].rsplit(":", 1)
        on_worker = row["node"] == swarm.worker_hostname
        assert address == (swarm.worker_address if on_worker else swarm.manager_address)
        # SSH is published on its node only (host mode), and sshd answers there.
        assert ssh_banner(address, int(port)).startswith(b"SSH-2.0-")
        if on_worker:
            # Girofle ran gitlab-ctl reconfigure there, through a job, once healthy.
            log = worker_events(swarm, name)
            first_pass = next(t for t, c, m in log if c == "healthcheck" and m == "pass")
            runs = [t for t, c, m in log if c == "reconfigure" and m == "start source=exec"]
            assert runs and runs[0] > first_pass, log
            # Its data is on the worker's disk, and nothing of it on the manager's.
            assert not (fleet.data_root / f"noeud-gitlab-{name}").exists()
        else:
            assert_reconfigured_after_healthy(fleet, name)


def test_reconfigure_stop_start_and_rm_of_an_instance_on_the_worker(
    swarm: TwoNodeSwarm, make_fleet: Callable[[], Fleet]
) -> None:
    fleet = swarm_fleet(make_fleet)
    name = instance_name("w")
    fleet.run("new-stack", name, "--node", swarm.worker_hostname)
    fleet.run("reconfigure", name, "--set", "gitlab_rails.time_zone=Europe/Paris")
    container = worker_container(swarm, name)
    rb = swarm.worker("exec", container, "cat", "/girofle/gitlab.rb").stdout
    assert "gitlab_rails['time_zone'] = 'Europe/Paris'" in rb  # the node's copy
    runs = [m for _, c, m in worker_events(swarm, name) if c == "reconfigure"]
    assert len([m for m in runs if m == "start source=exec"]) == 2, runs

    fleet.run("stop", name)
    assert fleet.ls()[0]["state"] == "stopped"
    assert swarm.worker("ps", "-q", "--filter", f"label=io.girofle.instance={name}").stdout == ""
    fleet.run("start", name)
    (row,) = fleet.ls()
    assert (row["state"], row["node"]) == ("healthy", swarm.worker_hostname)
    # The data survived on the worker: the new container reads the same gitlab.rb and VERSION.
    assert worker_container(swarm, name) != container

    # What the swarm target cannot do yet is refused in one line, changing nothing.
    for refused in (("upgrade", name, "--to", "18.11.3"),):
        proc = fleet.run(*refused, check=False)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "target: swarm" in proc.stderr
    assert fleet.ls()[0]["state"] == "healthy"

    fleet.run("rm", name, "--no-backup")
    assert fleet.ls() == []
    root = fleet.data_root / f"noeud-gitlab-{name}"
    assert on_worker_disk(swarm, root / "mapping-volumes" / "data" / "gitlab-rails")  # kept
    fleet.run("rm", name, "--purge", "--yes")
    assert not on_worker_disk(swarm, root)  # deleted there, not only on this host
    services = DockerClient().service.list(filters=[("label", f"io.girofle.instance={name}")])
    assert services == []


def test_backup_restore_and_move_of_an_instance_on_the_worker(
    swarm: TwoNodeSwarm,
    make_fleet: Callable[[], Fleet],
    engine: DockerClient,
    images: BuiltImages,
    tmp_path: Path,
) -> None:
    with fleet_with_remote(swarm, make_fleet, engine, images, tmp_path) as fleet:
        name = instance_name("w")
        fleet.run("new-stack", name, "--node", swarm.worker_hostname)
        commits = seed_on_worker(fleet, swarm, name, tmp_path)

        backed_up = fleet.run("backup", name, "--remote", "--json")
        taken = json.loads(backed_up.stdout)
        # What Girofle says on the node is said here too.
        assert f"{name}: gitlab-backup create (STRATEGY=copy)" in backed_up.stderr
        # On the worker's disk, beside the instance's data; none of it on the manager's.
        where = Path(taken["path"])
        assert on_worker_disk(swarm, where / "manifest.json")
        assert not where.exists()
        (project,) = taken["manifest"]["projects"]
        assert (project["path"], project["refs"]) == ("root/demo", {"refs/heads/main": commits[0]})
        assert taken["remote"]["data_added"] > 0
        pushed = json.loads(fleet.run("backups", "--remote", "--json").stdout)
        assert {(r["instance"], r["backup"]) for r in pushed} == {(name, taken["backup"])}
        assert fleet.inventory()["instances"][name]["last_backup_result"] == "ok"
        # The job's credentials were swarm secrets, gone with it; what stays is the
        # instance's own root password.
        client = DockerClient()
        secrets = [s.spec.name for s in client.secret.list()]
        assert [s for s in secrets if fleet.home_id in s and "-root-" not in s] == [], secrets
        assert [c.spec.name for c in client.config.list() if fleet.home_id in c.spec.name] == []

        # A commit after the backup, which the restore takes back; and a restore whose
        # GitLab stays stopped longer than the healthcheck's retries (1 s, 5 times), which
        # Swarm would answer by killing the task, but for Girofle's maintenance flag.
        options, url = through_the_edge(fleet, name)
        commit_to(tmp_path / "demo", "after the backup\n")
        git_ok(fleet, *options, "push", "-q", url, "main", cwd=tmp_path / "demo")
        switches = json.dumps({"restore_seconds": 12})
        swarm.worker(
            "exec", worker_container(swarm, name), "sh", "-c",
            f"echo '{switches}' > /etc/gitlab/standin-switches.json",
        )  # fmt: skip
        assert len(service_tasks(fleet, name)) == 1
        restored = fleet.run("restore", name, "--from", "remote", "--force", "--json")
        report = json.loads(restored.stdout)
        assert report["projects"] == [{"path": "root/demo", "wiki_pages": ["Runbook"]}]
        assert on_worker_disk(swarm, where.parent / report["safety_backup"] / "manifest.json")
        clone = tmp_path / "clone"
        git_ok(fleet, *options, "clone", "-q", url, str(clone))
        assert git("rev-list", "main", cwd=clone).split() == commits
        # One task replaced, by the restore's own restart (sshd reads the restored host
        # keys); none killed by Swarm meanwhile.
        assert len(service_tasks(fleet, name)) == 2
        log = worker_events(swarm, name)
        assert ("gitlab-rake", "doctor:secrets pass") in [(c, m) for _, c, m in log], log
        listed = json.loads(fleet.run("backups", name, "--json").stdout)
        assert [r["backup"] for r in listed] == sorted([taken["backup"], report["safety_backup"]])
        # A drill of the first backup, on the worker (where it is), recorded here.
        (drilled,) = json.loads(
            fleet.run("drill", name, "--backup", taken["backup"], "--json").stdout
        )
        assert (drilled["ok"], drilled["detail"]) == (True, "ok"), drilled
        assert fleet.inventory()["drills"][name]["backup_id"] == taken["backup"]
        assert swarm.worker("ps", "-aq", "--filter", "name=girofle-drill-").stdout == ""

        # The move to the manager: the same commits and wiki pages there, routed, SSH on
        # the manager's address, and the worker's copy gone.
        moved = json.loads(fleet.run("move", name, "--to", swarm.manager_id, "--json").stdout)
        (row,) = fleet.ls()
        assert (row["node"], row["state"]) == (moved["node"], "healthy")
        assert row["ssh"].startswith(f"{swarm.manager_address}:"), row
        assert ssh_banner(swarm.manager_address, int(row["ssh"].rsplit(":", 1)[1]))
        git_ok(fleet, *options, "clone", "-q", url, str(tmp_path / "moved"))
        assert git("rev-list", "main", cwd=tmp_path / "moved").split() == commits
        assert wiki_titles(fleet, name) == ["Runbook"]
        assert not on_worker_disk(swarm, fleet.data_root / f"noeud-gitlab-{name}")
        assert (
            swarm.worker("ps", "-aq", "--filter", f"label=io.girofle.instance={name}").stdout == ""
        )
        assert fleet.inventory()["moves"] == {}


def test_an_instance_whose_node_is_down_says_so_and_comes_up_elsewhere_from_its_backup(
    swarm: TwoNodeSwarm,
    make_fleet: Callable[[], Fleet],
    engine: DockerClient,
    images: BuiltImages,
    tmp_path: Path,
) -> None:
    """Last in the module: the worker's host becomes unreachable."""
    with fleet_with_remote(swarm, make_fleet, engine, images, tmp_path) as fleet:
        on_worker, on_manager = instance_name("w"), instance_name("m")
        fleet.run("new-stack", on_worker, "--node", swarm.worker_hostname)
        fleet.run("new-stack", on_manager, "--node", swarm.manager_id)
        pushed = fleet.run("backup", on_worker, "--remote").stdout.strip()
        swarm.cut_worker_off()
        node_down_is_seen(fleet, swarm, on_worker, on_manager)

        proc = fleet.run("move", on_worker, "--from-backup", "--json")
        moved = json.loads(proc.stdout)
        assert moved["node"] != swarm.worker_hostname
        rows = {row["name"]: row for row in fleet.ls()}
        assert (rows[on_worker]["state"], rows[on_worker]["node"]) == ("healthy", moved["node"])
        # Its backup was restored there, and the copy on the unreachable node is left, said.
        events = fleet.data_root / f"noeud-gitlab-{on_worker}/mapping-volumes/log/standin"
        log = (events / "events.log").read_text()
        assert " gitlab-backup restore done id=" in log, log
        assert " gitlab-rake doctor:secrets pass" in log, log
        assert "the old copy stays" in proc.stderr, proc.stderr
        assert pushed in proc.stderr, proc.stderr


def node_down_is_seen(fleet: Fleet, swarm: TwoNodeSwarm, on_worker: str, on_manager: str) -> None:
    """ls, nodes and new-stack once the worker is down."""
    states = {row["name"]: (row["state"], row["node"]) for row in fleet.ls()}
    assert states[on_worker] == ("node down", swarm.worker_hostname)
    assert states[on_manager][0] == "healthy"
    listed = {n["hostname"]: n for n in json.loads(fleet.run("nodes", "--json").stdout)}
    assert listed[swarm.worker_hostname]["state"] == "down"
    assert listed[swarm.worker_hostname]["instances"] == [on_worker]
    # A new instance goes to a node that is up, and one asked of a node that is down is refused.
    assert fleet.run("new-stack", instance_name("x"), "--dry-run").returncode == 0
    refused = fleet.run(
        "new-stack", instance_name("y"), "--node", swarm.worker_hostname, check=False
    )
    assert refused.returncode == 3 and "down" in refused.stderr, refused.stderr

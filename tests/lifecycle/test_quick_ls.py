"""`girofle ls` on its quick path: what the full command prints, without its imports."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Callable

import pytest

from girofle.home import Home
from girofle.inventory import (
    DrillRecord,
    Endpoint,
    Instance,
    RestoreRecord,
    UpgradeRecord,
    editing,
)
from tests.fleet import GIROFLE, Fleet, instance_name
from tests.imports import HEAVY, ls_with_imports

pytestmark = pytest.mark.engine

OPTIONS = [["--json"], ["--json", "--all"], [], ["--all"], ["--wide"]]
ROUTES_OPTIONS = [["--json"], [], ["--wide"]]


def outputs(fleet: Fleet, command: str = "ls") -> list[tuple[int, str, str, bool]]:
    """Exit code, stdout, stderr of each form of `ls` (or `routes`), and whether it imported
    a heavy module."""
    results = []
    for args in OPTIONS if command == "ls" else ROUTES_OPTIONS:
        proc, imported = ls_with_imports(fleet, *args, command=command)
        results.append((proc.returncode, proc.stdout, proc.stderr, bool(imported & HEAVY)))
    return results


def journal_records(fleet: Fleet, restored: str, upgraded: str) -> None:
    """An unfinished restore (its process gone), a failed upgrade and a drill, as a killed
    restore, a failed upgrade and a drill leave them."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with editing(Home(fleet.root)) as inventory:
        inventory.restores[restored] = RestoreRecord(
            source="elsewhere", backup_id="20261127T000000Z", started_at=now, pid=2**22 + 1
        )
        inventory.upgrades[upgraded] = UpgradeRecord(
            target="19.0.1",
            path=["19.0.1"],
            start_image=fleet.images.standin,
            started_at=now,
            failed="a test",
        )
        inventory.drills[upgraded] = DrillRecord(
            at=now, backup_id="20261127T000001Z", source="local", ok=False, detail="x", seconds=1.5
        )


def test_quick_ls_prints_what_the_full_command_prints(make_fleet: Callable[[], Fleet]) -> None:
    fleet = make_fleet()
    first = instance_name("first")
    fleet.init("--first-instance", first)
    names = [first] + [instance_name() for _ in range(3)]
    fleet.run("new-stack", names[1], "--project", "web", "--project", "docs")
    fleet.run("new-stack", names[2])
    fleet.run("new-stack", names[3])
    fleet.run("stop", names[1])
    fleet.run("rm", names[3], "--no-backup")
    journal_records(fleet, restored=names[2], upgraded=first)

    # No view of girofle.yml yet: the first `ls` is the full one, and leaves the view.
    first_ls = outputs(fleet)
    assert first_ls[0][3] and not any(heavy for *_, heavy in first_ls[1:])
    quick = outputs(fleet)
    assert not any(heavy for *_, heavy in quick), "the quick path imported a heavy module"
    rows = {row["name"]: row for row in fleet.ls()}
    assert rows[first]["state"] == "upgrade-failed"
    assert rows[first]["last_drill"]["detail"] == "x"
    assert rows[names[1]]["state"] == "stopped"
    assert len(rows[names[1]]["urls"]) == 2
    assert rows[names[2]]["state"] == "restore-failed"
    assert names[3] not in rows
    assert any(names[3] in stdout for _, stdout, _, _ in quick)  # with --all

    # Any other text in girofle.yml (a comment here) sends `ls` the full way once.
    with (fleet.root / "girofle.yml").open("a") as config:
        config.write("# edited by hand\n")
    full = outputs(fleet)
    assert full[0][3], "the first ls after an edit of girofle.yml did not validate it"
    assert full[0][:3] == quick[0][:3]
    # ... which wrote the view again: every form now quick, and each prints what it did.
    again = outputs(fleet)
    assert not any(heavy for *_, heavy in again)
    assert [r[:3] for r in again] == [r[:3] for r in quick]
    for (code, stdout, stderr, _), (full_code, full_out, full_err, _) in zip(
        again, forced_full(fleet), strict=True
    ):
        assert (code, stdout, stderr) == (full_code, full_out, full_err)

    # `routes` takes the same view: quick, and what the full command prints (the dashboard,
    # both hostnames of the two-project instance, each SSH pair; none of the removed one).
    routes = outputs(fleet, "routes")
    assert not any(heavy for *_, heavy in routes), "the quick routes imported a heavy module"
    assert [r[:3] for r in routes] == [r[:3] for r in forced_full(fleet, "routes")]
    listed = json.loads(routes[0][1])
    assert [r["kind"] for r in listed].count("dashboard") == 1
    assert len([r for r in listed if r["instance"] == names[1] and r["kind"] == "http"]) == 2
    assert {r["instance"] for r in listed if r["kind"] == "ssh"} == set(names[:3])


def forced_full(fleet: Fleet, command: str = "ls") -> list[tuple[int, str, str, bool]]:
    """Each form of `ls` (or `routes`) through the full command line (`--debug`, which the
    quick path leaves to it), its debug log left out."""
    results = []
    for args in OPTIONS if command == "ls" else ROUTES_OPTIONS:
        proc = fleet.run("--debug", command, *args, check=False)
        stderr = "\n".join(
            line for line in proc.stderr.splitlines() if not line.startswith("girofle.")
        )
        results.append((proc.returncode, proc.stdout, stderr, True))
    return results


def test_quick_ls_refuses_as_the_full_command_does(make_fleet: Callable[[], Fleet]) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance", routing="ports")
    fleet.run("ls")  # a full ls, which leaves the view

    proc, imported = ls_with_imports(fleet, env={"DOCKER_HOST": "unix:///nonexistent/d.sock"})
    assert not imported & HEAVY
    assert proc.returncode == 4
    assert proc.stderr.count("\n") == 0 and "does not answer" in proc.stderr

    # An engine the docker CLI reaches another way is asked through the CLI.
    proc, imported = ls_with_imports(fleet, env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert not imported & HEAVY
    assert proc.returncode == 4
    assert proc.stderr.count("\n") == 0 and "tcp://127.0.0.1:1" in proc.stderr

    # A girofle.yml broken after the view was written is refused, in one line.
    config = fleet.root / "girofle.yml"
    config.write_text(config.read_text().replace("routing: ports", "routing: sideways"))
    before = fleet.files()
    proc = fleet.run("ls", "--json", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "routing" in proc.stderr
    assert fleet.files() == before


def test_a_reader_that_leaves_early_gets_no_traceback(make_fleet: Callable[[], Fleet]) -> None:
    """`girofle ls | head -1` over a long listing: the reader closes the pipe while Girofle
    still writes; that ends Girofle quietly, on either path."""
    fleet = make_fleet()
    fleet.init("--no-first-instance", routing="ports")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with editing(Home(fleet.root)) as inventory:
        for i in range(2000):  # records only: no container, so each is "missing"
            name = f"rec{i:04d}"
            inventory.instances[name] = Instance(
                name=name,
                state="stopped",
                image=fleet.images.standin,
                address="127.0.0.1",
                projects=["gitlab"],
                ssh=Endpoint(address="127.0.0.1", port=10000 + i),
                http=Endpoint(address="127.0.0.1", port=20000 + i),
                subnet=f"10.{200 + i // 256}.{i % 256}.0/28",
                created_at=now,
            )
    fleet.run("ls")  # the full ls leaves the view
    for args in (["ls", "--wide"], ["--debug", "ls", "--wide"]):
        reader = subprocess.Popen(
            [GIROFLE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=fleet.env
        )
        assert reader.stdout is not None and reader.stderr is not None
        assert reader.stdout.readline().startswith(b"NAME")
        reader.stdout.close()
        stderr = reader.stderr.read().decode()
        assert reader.wait(timeout=60) == 1, stderr
        assert "Traceback" not in stderr and "Error" not in stderr, stderr

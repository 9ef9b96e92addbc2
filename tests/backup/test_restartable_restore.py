"""Restores that are killed or fail half-way: the rerun finishes the restore that was asked
for (never the safety backup taken since), and a failure leaves puma and sidekiq up."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.backup.test_local_backup_restore import ported_fleet, restored_commits, seed
from tests.fleet import Fleet, instance_name
from tests.helpers import git, wait_until
from tests.lifecycle.test_real_gitlab import set_switches

pytestmark = pytest.mark.engine


def one_more_commit(fleet: Fleet, name: str, workdir: Path) -> str:
    """Push a fourth commit, so the instance's data differs from the backup's."""
    password = (fleet.root / "secrets" / "instances" / name / "root_password").read_text().strip()
    repo = workdir / "demo"
    (repo / "file.txt").write_text(f"after the backup {secrets.token_hex(4)}\n")
    git("commit", "-q", "-am", "after the backup", cwd=repo)
    url = f"http://root:{password}@{fleet.ls()[0]['http']}/root/demo.git"
    git("push", "-q", url, "main", cwd=repo)
    return git("rev-parse", "main", cwd=repo).strip()


def gitlab_events(fleet: Fleet, name: str) -> list[str]:
    return [message for _, component, message in fleet.events(name) if component == "gitlab-backup"]


def wait_for_restore_start(fleet: Fleet, name: str, proc: subprocess.Popen[str]) -> None:
    """Until GitLab's restore has begun in the container (or the client gave up)."""
    started = wait_until(
        lambda: (
            proc.poll() is not None or any("restore start" in e for e in gitlab_events(fleet, name))
        ),
        120,
    )
    assert started and proc.poll() is None, proc.communicate()


def services(name: str) -> str:
    return subprocess.run(
        ["docker", "exec", f"gitlab-{name}", "gitlab-ctl", "status"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def restore_under_way(
    make_fleet: Callable[[], Fleet], tmp_path: Path, seconds: float
) -> tuple[Fleet, str, list[str], str, subprocess.Popen[str]]:
    """An instance with a backup and a commit since, and `restore --force` of that backup
    under way in GitLab (which pauses ``seconds`` half-way): fleet, name, the backup's
    commits, its id, and the girofle process."""
    fleet, name = ported_fleet(make_fleet)
    commits = seed(fleet, name, tmp_path)
    asked = fleet.run("backup", name).stdout.strip()
    one_more_commit(fleet, name, tmp_path)
    set_switches(fleet, name, restore_seconds=seconds)
    proc = fleet.popen("restore", name, "--backup", asked, "--force")
    wait_for_restore_start(fleet, name, proc)
    return fleet, name, commits, asked, proc


def test_a_killed_restore_force_rerun_restores_the_backup_asked_for(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    fleet, name, commits, asked, proc = restore_under_way(make_fleet, tmp_path, seconds=20)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (row,) = fleet.ls()
    assert row["state"] == "restore-failed"
    assert row["finish_restore"] == f"girofle restore {name} --backup {asked}"
    listed = fleet.run("ls")
    assert f"run `girofle restore {name} --backup {asked}`" in listed.stderr
    safety = json.loads(fleet.run("backups", name, "--json").stdout)[-1]["backup"]
    assert safety != asked  # the safety backup is the newest now

    # GitLab's restore outlives the killed client; then the plain rerun (no id: "latest")
    # finishes the restore that was asked for, not the safety backup.
    assert wait_until(lambda: "restore done" in " ".join(gitlab_events(fleet, name)), 60)
    set_switches(fleet, name)
    rerun = json.loads(fleet.run("restore", name, "--json").stdout)
    assert rerun["backup"] == asked
    assert restored_commits(fleet, name, tmp_path / "after") == commits
    assert fleet.inventory()["restores"] == {}


def test_a_rerun_waits_out_the_restart_a_killed_restore_left_in_the_engine(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    """Killed during its last step, `docker restart`, a restore leaves the engine stopping
    GitLab (slowly, as GitLab stops): the rerun must not stop puma and sidekiq in a container
    about to start them all again, and then run into them (found by the SIGKILL campaign)."""
    fleet, name = ported_fleet(make_fleet)
    commits = seed(fleet, name, tmp_path)
    asked = fleet.run("backup", name).stdout.strip()
    one_more_commit(fleet, name, tmp_path)
    set_switches(fleet, name, stop_seconds=15)
    proc = fleet.popen("restore", name, "--backup", asked, "--force")
    stopping = wait_until(
        lambda: (
            proc.poll() is not None
            or any(m.startswith("signal 15") for _, c, m in fleet.events(name) if c == "boot")
        ),
        180,
    )
    assert stopping and proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    rerun = fleet.run("restore", name, "--json", check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert f"gitlab-{name} is being restarted; waiting for it" in rerun.stderr
    assert json.loads(rerun.stdout)["backup"] == asked
    assert restored_commits(fleet, name, tmp_path / "after") == commits
    assert fleet.inventory()["restores"] == {}


def test_a_failed_gitlab_restore_starts_puma_and_sidekiq_again_and_reruns_finish(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    fleet, name, commits, asked, proc = restore_under_way(make_fleet, tmp_path, seconds=30)
    # GitLab's restore dies half-way (its process killed, as the OOM killer would).
    subprocess.run(
        [
            "docker",
            "exec",
            f"gitlab-{name}",
            "sh",
            "-c",
            "kill -9 $(cat /opt/gitlab/embedded/service/gitlab-rails/tmp/backup_restore.pid)",
        ],
        check=True,
    )
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 6, stderr
    (line,) = stderr.strip().splitlines()[-1:]
    assert f"to finish the restore, run `girofle restore {name} --backup {asked}`" in line
    status = services(name)
    assert "run: puma" in status and "run: sidekiq" in status, status
    assert fleet.ls()[0]["state"] == "restore-failed"

    set_switches(fleet, name)
    assert json.loads(fleet.run("restore", name, "--json").stdout)["backup"] == asked
    assert restored_commits(fleet, name, tmp_path / "after") == commits
    assert fleet.inventory()["restores"] == {}


def test_retention_never_deletes_the_backup_a_restore_is_restoring(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    fleet = make_fleet()
    name = instance_name("kept")
    fleet.init("--first-instance", name, "-c", "backups.keep_last=1", routing="ports")
    commits = seed(fleet, name, tmp_path)
    asked = fleet.run("backup", name).stdout.strip()
    one_more_commit(fleet, name, tmp_path)
    # keep_last=1: the safety backup taken first would make the asked one the oldest.
    report = json.loads(fleet.run("restore", name, "--backup", asked, "--force", "--json").stdout)
    assert report["backup"] == asked and report["safety_backup"] != asked
    assert restored_commits(fleet, name, tmp_path / "after") == commits

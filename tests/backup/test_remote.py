"""Storage in another place: restic over sftp to a real sshd, and a new home restored from it."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from python_on_whales import Container, DockerClient

from tests.backup.test_local_backup_restore import add_ssh_key, restored_commits, seed, ssh_port
from tests.fleet import TOOLS_IMAGE, Fleet, instance_name
from tests.helpers import SESSION, TEST_LABEL, SshClient, published_port, running, wait_until
from tests.images.build import BuiltImages

pytestmark = pytest.mark.engine


@dataclass
class Remote:
    """The remote's settings, as an operator would write them in girofle.yml."""

    repository: str
    ssh_key: Path
    sftp_command: str
    password: str
    server: Container
    known_hosts: Path | None

    def config_args(self) -> list[str]:
        known = ["-c", f"remote.known_hosts={self.known_hosts}"] if self.known_hosts else []
        return [
            *known,
            "-c",
            f"remote.repository={self.repository}",
            "-c",
            f"remote.ssh_key={self.ssh_key}",
            "-c",
            f"remote.sftp_command={self.sftp_command}",
        ]


@contextlib.contextmanager
def sftp_server(
    engine: DockerClient, images: BuiltImages, directory: Path, address: str = "127.0.0.1"
) -> Iterator[Remote]:
    """A real OpenSSH server in a container, published on ``address``, holding a restic
    repository; its key and known_hosts in ``directory``."""
    keys = directory / "keys"
    keys.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id")], check=True
    )
    authorized = keys / "authorized_keys"
    shutil.copy(keys / "id.pub", authorized)
    authorized.chmod(0o600)
    with running(
        engine,
        images.sshd,
        {TEST_LABEL: SESSION},
        publish=[(f"{address}:", 22)],
        volumes=[(str(authorized), "/root/.ssh/authorized_keys", "ro")],
    ) as sshd:
        port = published_port(sshd, 22)
        known_hosts = keys / "known_hosts"

        def scanned() -> bool:
            scan = ["ssh-keyscan", "-p", str(port), address]
            found = subprocess.run(scan, capture_output=True, text=True, check=False).stdout
            known_hosts.write_text(found)
            return "ssh-ed25519" in found

        assert wait_until(scanned, 30)
        # The README's form: host keys checked, against remote.known_hosts.
        yield Remote(
            repository=f"sftp:root@{address}:/srv/restic/repo",
            ssh_key=keys / "id",
            sftp_command=f"ssh -i /run/girofle/ssh-key -p {port} root@{address} -s sftp",
            password="correct horse battery staple",
            server=sshd,
            known_hosts=known_hosts,
        )


@pytest.fixture
def sftp_remote(engine: DockerClient, images: BuiltImages, tmp_path: Path) -> Iterator[Remote]:
    """A real OpenSSH server in a container, reachable on 127.0.0.1, holding a restic repo."""
    with sftp_server(engine, images, tmp_path) as remote:
        yield remote


def init_with_remote(fleet: Fleet, remote: Remote, name: str, *extra: str) -> None:
    fleet.init(
        "--first-instance",
        name,
        *remote.config_args(),
        *extra,
        routing="ports",
    )
    write_password(fleet, remote)


def write_password(fleet: Fleet, remote: Remote) -> None:
    """The restic password where girofle.yml's remote looks by default, 0600."""
    password = fleet.root / "secrets" / "home" / "restic" / "password"
    password.parent.mkdir(mode=0o700, exist_ok=True)
    password.write_text(remote.password + "\n")
    password.chmod(0o600)


def test_a_new_home_restores_an_instance_from_the_remote(
    make_fleet: Callable[[], Fleet], engine: DockerClient, sftp_remote: Remote, tmp_path: Path
) -> None:
    fleet = make_fleet()
    name = instance_name("a")
    init_with_remote(fleet, sftp_remote, name)
    commits = seed(fleet, name, tmp_path)
    laptop = SshClient.make(tmp_path / "laptop")
    add_ssh_key(fleet, laptop)
    cloned = laptop.clone(ssh_port(fleet, name), "root/demo.git", tmp_path / "a", name, learn=True)
    assert cloned.returncode == 0, cloned.stderr
    backup_id = fleet.run("backup", name, "--remote").stdout.strip()
    home_backup = fleet.run("backup", "--girofle", "--remote").stdout.strip()
    listed = json.loads(fleet.run("backups", "--remote", "--json").stdout)
    assert {(r["kind"], r["backup"]) for r in listed} == {
        ("instance", backup_id),
        ("girofle", home_backup),
    }
    # Every backup of an instance goes to one path in the repository (its id a tag): the
    # second snapshot's parent is the first, so restic compares against it.
    second = json.loads(fleet.run("backup", name, "--remote", "--json").stdout)
    snapshots = json.loads(fleet.run("backups", name, "--remote", "--json").stdout)
    assert [s["backup"] for s in snapshots] == [backup_id, second["backup"]]
    assert snapshots[0]["parent"] is None
    assert snapshots[1]["parent"] == snapshots[0]["snapshot"]

    # The host is gone: containers, the whole data root (local backups too) and the home.
    engine.container.remove(f"gitlab-{name}", force=True, volumes=True)
    shutil.rmtree(fleet.data_root)
    password = tmp_path / "restic-password"
    password.write_text(sftp_remote.password + "\n")
    password.chmod(0o600)
    shutil.rmtree(fleet.root)

    new_home = tmp_path / "new-home"
    env = {"GIROFLE_HOME": str(new_home), "GIROFLE_TOOLS_IMAGE": TOOLS_IMAGE}
    fleet.run(
        "restore",
        "--girofle",
        "--from",
        "remote",
        "--data-root",
        str(fleet.data_root),
        "--repository",
        sftp_remote.repository,
        "--password-file",
        str(password),
        "--ssh-key",
        str(sftp_remote.ssh_key),
        "--sftp-command",
        sftp_remote.sftp_command,
        "--known-hosts",
        str(sftp_remote.known_hosts),
        env=env,
    )
    report = json.loads(fleet.run("restore", name, "--from", "remote", "--json", env=env).stdout)
    # Listed by the restored instance's own API, after the restore.
    assert report["projects"] == [{"path": "root/demo", "wiki_pages": ["Runbook"]}]
    data_root = fleet.data_root  # the restored girofle.yml keeps the original data root
    fleet.root, fleet.env = new_home, {**fleet.env, **env}
    assert restored_commits(fleet, name, tmp_path) == commits
    # The SSH host keys came back too: the laptop's known_hosts entry still verifies.
    again = laptop.clone(ssh_port(fleet, name), "root/demo.git", tmp_path / "b", name)
    assert again.returncode == 0, again.stderr
    events = data_root / f"noeud-gitlab-{name}/mapping-volumes/log/standin/events.log"
    assert " gitlab-rake doctor:secrets pass" in events.read_text()
    manifest = json.loads(
        next((data_root / f"noeud-gitlab-{name}" / "bckups").glob("2*/manifest.json")).read_text()
    )
    assert manifest["projects"] == [
        {
            "path": "root/demo",
            "wiki_pages": ["Runbook"],
            "id": 1,
            "refs": {"refs/heads/main": commits[0]},
            "commits": len(commits),
        }
    ]


def test_a_wrong_restic_password_is_one_line_and_keeps_the_local_backup(
    make_fleet: Callable[[], Fleet], sftp_remote: Remote
) -> None:
    fleet = make_fleet()
    name = instance_name("a")
    init_with_remote(fleet, sftp_remote, name)
    fleet.run("backup", name, "--remote")
    checked = fleet.run("backup", "verify", name).stdout
    assert f"remote\t{sftp_remote.repository}\tok" in checked  # restic check passed
    (fleet.root / "secrets" / "home" / "restic" / "password").write_text("not the password\n")
    proc = fleet.run("backup", name, "--remote", check=False)
    assert proc.returncode == 6
    assert "does not open" in proc.stderr.strip().splitlines()[-1]
    assert len(json.loads(fleet.run("backups", name, "--json").stdout)) == 2  # both local kept
    verify = fleet.run("backup", "verify", name, check=False)
    assert verify.returncode == 1
    assert verify.stdout.count("\tok") == 2  # both local backups still match their manifests
    assert "\tBAD: the restic password" in verify.stdout


def in_image(tag: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a throwaway container of image ``tag``."""
    return subprocess.run(
        ["docker", "run", "--rm", tag, *argv], capture_output=True, text=True, check=True
    )


def test_girofle_builds_its_tools_image_from_a_base(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance", routing="ports")
    tag = f"girofle-test/tools-build:{SESSION}"
    try:
        built = fleet.run("image", "build", "--base", fleet.images.base, "--tag", tag).stdout
        assert built.strip() == tag
        assert engine.image.inspect(tag).config.labels["io.girofle.role"] == "tools"
        assert in_image(tag, "restic", "version").stdout.startswith("restic 0.")
        ssh = in_image(tag, "ssh", "-V")
        assert "OpenSSH" in ssh.stderr
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)


def test_an_installed_girofle_not_a_checkout_builds_its_tools_image(
    make_fleet: Callable[[], Fleet], engine: DockerClient, tmp_path: Path
) -> None:
    # `pip install .` (not -e) into a fresh venv, run from elsewhere: no pyproject.toml
    # beside the package, as for any wheel.
    checkout = Path(__file__).resolve().parents[2]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(checkout)], check=True, capture_output=True
    )
    fleet = make_fleet()
    fleet.init("--no-first-instance", routing="ports")
    tag = f"girofle-test/tools-installed:{SESSION}"
    try:
        built = subprocess.run(
            [
                str(venv / "bin" / "girofle"),
                "image",
                "build",
                "--base",
                fleet.images.base,
                "--tag",
                tag,
            ],
            capture_output=True,
            text=True,
            env=fleet.env,
            cwd=tmp_path,
            check=False,
        )
        assert built.returncode == 0, built.stderr
        labels = engine.image.inspect(tag).config.labels
        installed = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "from girofle.tools_image import fingerprint, _has_source_tree as s; "
                "print(fingerprint(), s())",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=True,
        ).stdout.split()
        assert installed == [labels["io.girofle.fingerprint"], "False"]
        assert in_image(tag, "girofle", "--version").stdout.startswith("girofle, version ")
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)


def test_a_remote_that_does_not_answer_keeps_the_local_backup(
    make_fleet: Callable[[], Fleet], engine: DockerClient, sftp_remote: Remote
) -> None:
    fleet = make_fleet()
    name = instance_name("a")
    init_with_remote(fleet, sftp_remote, name)
    pushed = json.loads(fleet.run("backup", name, "--remote", "--json").stdout)
    assert pushed["remote"]["data_added"] > 0
    engine.container.stop(sftp_remote.server)
    proc = fleet.run("backup", name, "--remote", check=False)
    assert proc.returncode == 6
    (line,) = [x for x in proc.stderr.strip().splitlines() if x.startswith("girofle:")]
    assert "is complete locally, but the remote" in line and sftp_remote.repository in line
    local = json.loads(fleet.run("backups", name, "--json").stdout)
    assert len(local) == 2
    verify = fleet.run("backup", "verify", name, check=False).stdout
    assert verify.count("\tok") == 2


def test_an_unknown_sftp_host_key_is_refused_in_one_line(
    make_fleet: Callable[[], Fleet], sftp_remote: Remote
) -> None:
    fleet = make_fleet()
    name = instance_name("a")
    init_with_remote(fleet, replace(sftp_remote, known_hosts=None), name)
    proc = fleet.run("backup", name, "--remote", check=False)
    assert proc.returncode == 6
    (line,) = [x for x in proc.stderr.strip().splitlines() if x.startswith("girofle:")]
    assert "host key is not known (set remote.known_hosts" in line
    assert len(json.loads(fleet.run("backups", name, "--json").stdout)) == 1  # kept locally


def test_init_with_a_remote_makes_the_restic_password_and_says_where(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    fleet = make_fleet()
    repository = tmp_path / "restic-repo"
    proc = fleet.init(
        "--no-first-instance", "-c", f"remote.repository={repository}", routing="ports"
    )
    password = fleet.root / "secrets" / "home" / "restic" / "password"
    assert password.stat().st_mode & 0o777 == 0o600
    assert len(password.read_text().strip()) >= 32
    assert f"restic password: {password} (mode 0600)" in proc.stderr
    assert "Keep a copy somewhere other than this host" in proc.stderr


def test_a_tools_base_image_that_cannot_be_had_is_named(make_fleet: Callable[[], Fleet]) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance", routing="ports")
    base, tag = "girofle-test/no-such-base:1", f"girofle-test/tools-nobase:{SESSION}"
    proc = fleet.run("image", "build", "--base", base, "--tag", tag, check=False)
    assert proc.returncode == 6
    (line,) = [x for x in proc.stderr.strip().splitlines() if x.startswith("girofle:")]
    assert f"on {base} (tools.base_image), which this engine has to pull" in line


def test_a_drill_from_the_remote_passes_on_a_home_that_never_held_the_backup(
    make_fleet: Callable[[], Fleet], sftp_remote: Remote, tmp_path: Path
) -> None:
    fleet = make_fleet()
    name = instance_name("a")
    init_with_remote(fleet, sftp_remote, name)
    seed(fleet, name, tmp_path)
    backup_id = fleet.run("backup", name, "--remote").stdout.strip()
    # Another home, on the same remote: it has never run the instance nor held its backups.
    other = make_fleet()
    other.init("--no-first-instance", *sftp_remote.config_args(), routing="ports")
    password = other.root / "secrets" / "home" / "restic" / "password"
    password.write_text(sftp_remote.password + "\n")
    password.chmod(0o600)
    proc = other.run("drill", name, "--from", "remote", "--json", timeout=600)
    (report,) = json.loads(proc.stdout)
    assert (report["backup"], report["ok"], report["source"]) == (backup_id, True, "remote")
    assert not (other.data_root / f"noeud-gitlab-{name}").exists()
    assert json.loads((other.root / "inventory.json").read_text())["drills"][name]["ok"] is True

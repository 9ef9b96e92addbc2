"""Local backups and restores: what comes back, what is refused, and faults."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from girofle.backup.manifest import Manifest, describe_files
from tests.fleet import Fleet, instance_name
from tests.helpers import SshClient, git, http, wait_until

pytestmark = pytest.mark.engine

TOKEN = "glpat-backup-test-token-000000001"
TOKEN_SCRIPT = (
    "token = User.find_by_username('root').personal_access_tokens.create(scopes: ['api'], "
    f"name: 'test'); token.set_token('{TOKEN}'); token.save!"
)


def make_root_token(name: str) -> None:
    """Root's API token TOKEN on instance ``name``, by GitLab's documented runner script."""
    subprocess.run(
        ["docker", "exec", "-i", f"gitlab-{name}", "gitlab-rails", "runner", "-"],
        input=TOKEN_SCRIPT,
        text=True,
        check=True,
        capture_output=True,
    )


def seed(fleet: Fleet, name: str, workdir: Path) -> list[str]:
    """A project with three commits and a wiki page; return the commit ids."""
    make_root_token(name)
    url = f"http://{fleet.ls()[0]['http']}"
    headers = {"PRIVATE-TOKEN": TOKEN, "Content-Type": "application/json"}
    assert (
        http(f"{url}/api/v4/projects", headers, json.dumps({"name": "demo"}).encode()).status == 201
    )
    page = json.dumps({"title": "Runbook", "content": "# How we restore"}).encode()
    assert http(f"{url}/api/v4/projects/root%2Fdemo/wikis", headers, page).status == 201
    repo = workdir / "demo"
    git("init", "-q", "-b", "main", str(repo))
    for i in range(3):
        (repo / "file.txt").write_text(f"{i}\n")
        git("add", "file.txt", cwd=repo)
        git("commit", "-q", "-m", f"commit {i}", cwd=repo)
    password = (fleet.root / "secrets" / "instances" / name / "root_password").read_text().strip()
    git(
        "push", "-q", f"http://root:{password}@{url.split('//')[1]}/root/demo.git", "main", cwd=repo
    )
    return git("rev-list", "main", cwd=repo).split()


def restored_commits(fleet: Fleet, name: str, workdir: Path) -> list[str]:
    """The commits of root/demo, cloned from the (restored) instance as root."""
    row = fleet.ls()[0]
    assert row["state"] == "healthy"
    password = (fleet.root / "secrets" / "instances" / name / "root_password").read_text().strip()
    clone = workdir / "clone"
    git("clone", "-q", f"http://root:{password}@{row['http']}/root/demo.git", str(clone))
    return git("rev-list", "main", cwd=clone).split()


def ported_fleet(make_fleet: Callable[[], Fleet]) -> tuple[Fleet, str]:
    fleet = make_fleet()
    name = instance_name("a")
    fleet.init("--first-instance", name, routing="ports")
    return fleet, name


def backup_dir(fleet: Fleet, name: str, backup_id: str) -> Path:
    return fleet.data_root / f"noeud-gitlab-{name}" / "bckups" / backup_id


def test_backup_then_restore_after_losing_the_instance(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    fleet, name = ported_fleet(make_fleet)
    commits = seed(fleet, name, tmp_path)
    backup_id = fleet.run("backup", name).stdout.strip()
    directory = backup_dir(fleet, name, backup_id)
    manifest = Manifest.model_validate_json((directory / "manifest.json").read_text())
    assert manifest.gitlab_version == "18.11.11" and manifest.instance == name
    assert [(p.path, p.wiki_pages) for p in manifest.projects] == [("root/demo", ["Runbook"])]
    # What the repository held, for drills to compare against: its branch and its commits.
    assert manifest.projects[0].refs == {"refs/heads/main": commits[0]}
    assert manifest.projects[0].commits == len(commits)
    assert {f.path.split("/")[0] for f in manifest.files} == {"data", "config", "log"}
    # GitLab's archive is named after Girofle's backup (BACKUP=) and handed to Girofle in
    # the data volume; neither it nor the config archive's staging directory stays there.
    assert manifest.gitlab_backup_id == backup_id
    assert (directory / "data" / f"{backup_id}_gitlab_backup.tar").is_file()
    listing = ["docker", "exec", f"gitlab-{name}", "ls", "-A"]
    volume = subprocess.run([*listing, "/var/opt/gitlab"], capture_output=True, text=True)
    assert "backups" in volume.stdout.split() and "girofle-etc-backup" not in volume.stdout
    for handed_from in ("backups", "girofle-handover"):  # GitLab's, where it hands over
        archives = subprocess.run(
            [*listing, f"/var/opt/gitlab/{handed_from}"], capture_output=True, text=True
        )
        assert archives.returncode == 0 and archives.stdout.split() == [], archives.stdout
    assert (directory / "manifest.json").stat().st_mode & 0o777 == 0o600
    # Each step's seconds: GitLab's (its backup takes the stand-in's backup_seconds) and
    # Girofle's own, which the bench sums.
    steps = {"before", "gitlab_backup", "archive_moves", "backup_etc", "logs", "after"}
    assert set(manifest.durations) == {*steps, "checksums"}
    assert manifest.durations["gitlab_backup"] > 0
    assert all(seconds >= 0 for seconds in manifest.durations.values())
    listed = json.loads(fleet.run("backups", name, "--json").stdout)
    assert [b["backup"] for b in listed] == [backup_id]
    assert fleet.ls()[0]["last_backup"] is not None
    # GitLab's backup ran with a copy of the repositories and rsyncable gzip (for restic).
    (started,) = [m for _, c, m in fleet.events(name) if m.startswith("create start")]
    assert "strategy=copy" in started and "gzip_rsyncable=yes" in started

    fleet.run("rm", name, "--no-backup")
    shutil.rmtree(fleet.data_root / f"noeud-gitlab-{name}" / "mapping-volumes")
    report = json.loads(fleet.run("restore", name, "--json").stdout)
    assert report["backup"] == backup_id
    assert report["projects"] == [{"path": "root/demo", "wiki_pages": ["Runbook"]}]
    assert restored_commits(fleet, name, tmp_path) == commits
    assert ("gitlab-rake", "doctor:secrets pass") in [(c, m) for _, c, m in fleet.events(name)]


def rewrite_secrets(directory: Path, change: Callable[[bytes], bytes | None]) -> None:
    """Play an operator whose gitlab-secrets.json was lost (``change`` returns None) or
    replaced, then re-sign the manifest so that only the secrets are wrong."""
    (archive,) = (directory / "config").glob("gitlab_config_*.tar")
    kept = io.BytesIO()
    with tarfile.open(archive) as source, tarfile.open(fileobj=kept, mode="w") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if member.name.endswith("gitlab-secrets.json"):
                assert data is not None
                data = change(data)
                if data is None:
                    continue
                member.size = len(data)
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    archive.write_bytes(kept.getvalue())
    manifest = Manifest.model_validate_json((directory / "manifest.json").read_text())
    manifest.files = describe_files(directory)
    (directory / "manifest.json").write_text(manifest.model_dump_json())


def other_db_key(data: bytes) -> bytes:
    secrets = json.loads(data)
    secrets["gitlab_rails"]["db_key_base"] = "0" * 128
    return json.dumps(secrets).encode()


def lose_instance(fleet: Fleet, name: str) -> None:
    fleet.run("rm", name, "--no-backup")
    shutil.rmtree(fleet.data_root / f"noeud-gitlab-{name}" / "mapping-volumes")


def test_a_backup_without_secrets_is_refused_at_backup_and_restore_time(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet, name = ported_fleet(make_fleet)
    backup_id = fleet.run("backup", name).stdout.strip()
    secrets = fleet.data_root / f"noeud-gitlab-{name}" / "mapping-volumes" / "config"
    kept = (secrets / "gitlab-secrets.json").read_bytes()
    (secrets / "gitlab-secrets.json").unlink()
    refused = fleet.run("backup", name, check=False)
    assert refused.returncode == 6, refused.stderr
    assert "holds no gitlab-secrets.json" in refused.stderr.strip().splitlines()[-1]
    assert [b["backup"] for b in json.loads(fleet.run("backups", name, "--json").stdout)] == [
        backup_id
    ]
    (secrets / "gitlab-secrets.json").write_bytes(kept)

    rewrite_secrets(backup_dir(fleet, name, backup_id), lambda data: None)
    lose_instance(fleet, name)
    proc = fleet.run("restore", name, check=False)
    assert proc.returncode == 6
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .endswith("holds no gitlab-secrets.json: a restore from it could not decrypt the database")
    )
    # Refused before anything changed: no container was commissioned for the restore.
    assert engine.container.list(all=True, filters=[("name", f"^gitlab-{name}$")]) == []


def test_a_restore_with_the_wrong_secrets_fails_although_doctor_exits_0(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    fleet, name = ported_fleet(make_fleet)
    seed(fleet, name, tmp_path)
    backup_id = fleet.run("backup", name).stdout.strip()
    rewrite_secrets(backup_dir(fleet, name, backup_id), other_db_key)
    lose_instance(fleet, name)
    proc = fleet.run("restore", name, check=False)
    assert proc.returncode == 6
    last = proc.stderr.strip().splitlines()[-1]
    assert "gitlab:doctor:secrets cannot decrypt" in last and "ApplicationSetting: 1" in last
    # GitLab's task itself succeeded: only its output tells the secrets are wrong.
    assert ("gitlab-rake", "doctor:secrets fail") in [(c, m) for _, c, m in fleet.events(name)]


def test_one_changed_byte_is_refused_before_any_container_changes(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet, name = ported_fleet(make_fleet)
    backup_id = fleet.run("backup", name).stdout.strip()
    (archive,) = (backup_dir(fleet, name, backup_id) / "data").glob("*_gitlab_backup.tar")
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    before = engine.container.inspect(f"gitlab-{name}")
    proc = fleet.run("restore", name, "--force", check=False)
    assert proc.returncode == 6
    assert "does not match its checksum" in proc.stderr.strip().splitlines()[-1]
    after = engine.container.inspect(f"gitlab-{name}")
    assert (after.id, after.state.started_at, after.state.running) == (
        before.id,
        before.state.started_at,
        True,
    )
    assert len(json.loads(fleet.run("backups", name, "--json").stdout)) == 1  # no safety backup
    assert fleet.run("backup", "verify", name, check=False).returncode == 1


def test_sigkill_during_a_backup_leaves_nothing_that_looks_complete(
    make_fleet: Callable[[], Fleet],
) -> None:
    fleet, name = ported_fleet(make_fleet)
    first = fleet.run("backup", name).stdout.strip()
    backups = fleet.data_root / f"noeud-gitlab-{name}" / "bckups"
    proc = fleet.popen("backup", name)
    assert wait_until(lambda: any(backups.glob(".partial-*/data")), timeout=60, interval=0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    listed = [b["backup"] for b in json.loads(fleet.run("backups", name, "--json").stdout)]
    assert listed == [first]
    fleet.run("backup", "verify", name)
    second = fleet.run("backup", name).stdout.strip()
    listed = [b["backup"] for b in json.loads(fleet.run("backups", name, "--json").stdout)]
    assert listed == [first, second]
    assert not list(backups.glob(".partial-*"))


def test_a_restore_onto_another_gitlab_version_is_refused(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet, name = ported_fleet(make_fleet)
    fleet.run("backup", name)
    other = instance_name("b")
    fleet.run("new-stack", other, "--image", fleet.images.standin_other)
    started = engine.container.inspect(f"gitlab-{other}").state.started_at
    proc = fleet.run("restore", name, "--as", other, "--force", check=False)
    assert proc.returncode == 6
    line = proc.stderr.strip().splitlines()[-1]
    assert "the backup is of GitLab 18.11.11" in line and f"{other} runs 19.0.1" in line
    assert engine.container.inspect(f"gitlab-{other}").state.started_at == started


def test_retention_rm_final_backup_and_unknown_ids(make_fleet: Callable[[], Fleet]) -> None:
    fleet = make_fleet()
    name = instance_name("a")
    fleet.init("--first-instance", name, "-c", "backups.keep_last=2", routing="ports")
    made = [fleet.run("backup", name).stdout.strip() for _ in range(3)]
    listed = [b["backup"] for b in json.loads(fleet.run("backups", name, "--json").stdout)]
    assert listed == made[1:]
    proc = fleet.run("restore", name, "--backup", "20000101T000000Z", "--force", check=False)
    assert proc.returncode == 2 and "no backup '20000101T000000Z'" in proc.stderr
    fleet.run("rm", name)
    listed = [b["backup"] for b in json.loads(fleet.run("backups", name, "--json").stdout)]
    assert len(listed) == 2 and listed[0] == made[2]  # the final backup, kept by retention


def test_a_new_home_from_girofles_own_backup_then_the_instance(
    make_fleet: Callable[[], Fleet], engine: DockerClient, tmp_path: Path
) -> None:
    fleet, name = ported_fleet(make_fleet)
    commits = seed(fleet, name, tmp_path)
    fleet.run("backup", name)
    home_backup = fleet.run("backup", "--girofle").stdout.strip()
    archive = fleet.data_root / "sauvegardes" / home_backup / "girofle-home.tar.gz"
    assert archive.stat().st_mode & 0o777 == 0o600
    # The host is lost: its containers, Girofle's home and the instance's volumes. What
    # survives is what backups keep (here on the same disk; on another host, the remote).
    engine.container.remove(f"gitlab-{name}", force=True, volumes=True)
    for part in ("girofle.yml", "inventory.json"):
        (fleet.root / part).unlink()
    for part in ("stacks", "secrets"):
        shutil.rmtree(fleet.root / part)
    shutil.rmtree(fleet.data_root / f"noeud-gitlab-{name}" / "mapping-volumes")
    new_home = tmp_path / "new-home"
    env = {"GIROFLE_HOME": str(new_home)}
    fleet.run("restore", "--girofle", "--data-root", str(fleet.data_root), env=env)
    assert (new_home / "secrets").stat().st_mode & 0o777 == 0o700
    assert json.loads((new_home / "inventory.json").read_text())["instances"][name]
    fleet.run("restore", name, env=env)
    fleet.root = new_home
    fleet.env = {**fleet.env, **env}
    assert restored_commits(fleet, name, tmp_path) == commits


def api_call(fleet: Fleet, path: str, data: dict[str, str], method: str = "POST") -> int:
    url = f"http://{fleet.ls()[0]['http']}/api/v4{path}"
    headers = {"PRIVATE-TOKEN": TOKEN, "Content-Type": "application/json"}
    return http(url, headers, json.dumps(data).encode(), method=method).status


def test_a_project_without_wiki_is_recorded_and_restored(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    fleet, name = ported_fleet(make_fleet)
    commits = seed(fleet, name, tmp_path)
    for project in ("nowiki", "plain"):
        assert api_call(fleet, "/projects", {"name": project}) == 201
    assert (
        api_call(fleet, "/projects/root%2Fnowiki", {"wiki_access_level": "disabled"}, "PUT") == 200
    )
    backup_id = fleet.run("backup", name).stdout.strip()
    manifest = Manifest.model_validate_json(
        (backup_dir(fleet, name, backup_id) / "manifest.json").read_text()
    )
    expected = {"root/demo": ["Runbook"], "root/nowiki": None, "root/plain": []}
    assert {p.path: p.wiki_pages for p in manifest.projects} == expected
    lose_instance(fleet, name)
    report = json.loads(fleet.run("restore", name, "--json").stdout)
    assert {p["path"]: p["wiki_pages"] for p in report["projects"]} == expected
    assert restored_commits(fleet, name, tmp_path) == commits


def test_every_page_of_projects_is_in_the_manifest(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    fleet, name = ported_fleet(make_fleet)
    seed(fleet, name, tmp_path)
    # 249 more, created inside the container in one exec (the API pages at 100 at most).
    script = (
        'for i in $(seq 1 249); do curl -sf -o /dev/null -H "PRIVATE-TOKEN: $T" '
        '-d "name=p$i" http://localhost/api/v4/projects || exit 1; done'
    )
    subprocess.run(
        ["docker", "exec", "-e", f"T={TOKEN}", f"gitlab-{name}", "sh", "-c", script], check=True
    )
    backup_id = fleet.run("backup", name).stdout.strip()
    manifest = Manifest.model_validate_json(
        (backup_dir(fleet, name, backup_id) / "manifest.json").read_text()
    )
    paths = [p.path for p in manifest.projects]
    assert len(paths) == len(set(paths)) == 250
    assert set(paths) == {"root/demo"} | {f"root/p{i}" for i in range(1, 250)}


def add_ssh_key(fleet: Fleet, client: SshClient) -> None:
    """Register the client's key for root through the API (POST /user/keys)."""
    assert api_call(fleet, "/user/keys", {"title": "laptop", "key": client.public_key}) == 201


def ssh_port(fleet: Fleet, name: str) -> int:
    return int(fleet.inventory()["instances"][name]["ssh"]["port"])


def test_clone_over_ssh_and_the_host_keys_survive_a_restore(
    make_fleet: Callable[[], Fleet], tmp_path: Path
) -> None:
    fleet, name = ported_fleet(make_fleet)
    commits = seed(fleet, name, tmp_path)
    client = SshClient.make(tmp_path / "laptop")
    add_ssh_key(fleet, client)
    first = client.clone(ssh_port(fleet, name), "root/demo.git", tmp_path / "a", name, learn=True)
    assert first.returncode == 0, first.stderr
    assert git("rev-list", "main", cwd=tmp_path / "a").split() == commits
    fleet.run("backup", name)
    lose_instance(fleet, name)  # /etc/gitlab goes too: a new boot would make new host keys
    fleet.run("restore", name)
    again = client.clone(ssh_port(fleet, name), "root/demo.git", tmp_path / "b", name)
    assert again.returncode == 0, again.stderr  # the known_hosts entry still verifies
    assert git("rev-list", "main", cwd=tmp_path / "b").split() == commits
    # An unknown key is refused by the instance's sshd: the key is what lets one in.
    stranger = SshClient.make(tmp_path / "stranger")
    stranger.known_hosts.write_bytes(client.known_hosts.read_bytes())
    refused = stranger.clone(ssh_port(fleet, name), "root/demo.git", tmp_path / "c", name)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr

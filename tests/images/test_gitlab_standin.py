"""The GitLab stand-in honours the contract Girofle relies on, failure modes included."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import Container, DockerClient

from tests.helpers import (
    SESSION,
    TEST_LABEL,
    exec_rc,
    exec_text,
    git,
    http,
    published_port,
    running,
    wait_health,
    wait_until,
)
from tests.images.build import STANDIN_VERSIONS, BuiltImages

pytestmark = pytest.mark.engine

ROOT_PASSWORD = "Initial-Root-pw-42"
TOKEN = "glpat-standin-test-token-000001"
TOKEN_SCRIPT = (
    "token = User.find_by_username('root').personal_access_tokens.create("
    "scopes: ['api', 'read_repository'], name: 'girofle', expires_at: 365.days.from_now); "
    f"token.set_token('{TOKEN}'); token.save!"
)
OMNIBUS = (
    "external_url 'http://demo.scm.alpha.kytes.test'; "
    f"gitlab_rails['initial_root_password'] = '{ROOT_PASSWORD}'; "
    "gitlab_rails['gitlab_shell_ssh_port'] = 2222"
)
FAST_HEALTH = {"health_interval": 1, "health_retries": 3}
LABELS = {TEST_LABEL: SESSION}


def events(container: Container) -> list[tuple[str, str, str]]:
    """(timestamp, component, message) for each line of the stand-in's event log."""
    text = exec_text(container, "cat", "/var/log/gitlab/standin/events.log")
    return [tuple(line.split(" ", 2)) for line in text.splitlines()]  # type: ignore[misc]


@contextlib.contextmanager
def boot(
    engine: DockerClient, image: str, envs: dict[str, str] | None = None, **kwargs: object
) -> Iterator[Container]:
    with running(
        engine,
        image,
        LABELS,
        envs={"GITLAB_OMNIBUS_CONFIG": OMNIBUS, **(envs or {})},
        publish=[("127.0.0.1:", 80)],
        **FAST_HEALTH,
        **kwargs,
    ) as container:
        assert wait_health(engine, container, "healthy") == "healthy"
        yield container


@pytest.fixture(scope="module")
def gitlab(engine: DockerClient, images: BuiltImages) -> Iterator[Container]:
    """One healthy stand-in with an API token, shared by the read-mostly tests."""
    with boot(engine, images.standin) as container:
        assert exec_rc(container, "gitlab-rails", "runner", "-", stdin=TOKEN_SCRIPT).returncode == 0
        yield container


def api(
    container: Container, path: str, data: dict[str, str] | None = None, token: str | None = TOKEN
) -> tuple[int, object]:
    headers = {"PRIVATE-TOKEN": token} if token else {}
    body = None
    if data is not None:
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    answer = http(f"http://127.0.0.1:{published_port(container, 80)}/api/v4{path}", headers, body)
    return answer.status, json.loads(answer.body) if answer.body else None


def push_commits(container: Container, project: str, workdir: Path, count: int = 3) -> list[str]:
    repo = workdir / project
    git("init", "-q", "-b", "main", str(repo))
    for i in range(count):
        (repo / "file.txt").write_text(f"revision {i}\n")
        git("add", "file.txt", cwd=repo)
        git("commit", "-q", "-m", f"commit {i}", cwd=repo)
    url = (
        f"http://root:{ROOT_PASSWORD}@127.0.0.1:{published_port(container, 80)}/root/{project}.git"
    )
    git("push", "-q", url, "main", cwd=repo)
    return git("rev-list", "main", cwd=repo).split()


# --- boot, configuration, health ---------------------------------------------------


def test_boot_applies_config_and_creates_secrets(gitlab: Container) -> None:
    applied = json.loads(exec_text(gitlab, "cat", "/var/log/gitlab/standin/applied-config.json"))
    assert applied["external_url"] == "http://demo.scm.alpha.kytes.test"
    assert applied["gitlab_rails"]["gitlab_shell_ssh_port"] == 2222
    modes = exec_text(
        gitlab, "stat", "-c", "%a %n", "/etc/gitlab/gitlab-secrets.json", "/etc/gitlab/gitlab.rb"
    )
    assert modes.splitlines() == [
        "600 /etc/gitlab/gitlab-secrets.json",
        "600 /etc/gitlab/gitlab.rb",
    ]
    secrets = json.loads(exec_text(gitlab, "cat", "/etc/gitlab/gitlab-secrets.json"))
    assert len(secrets["gitlab_rails"]["db_key_base"]) == 128


def test_gitlab_rb_wins_over_omnibus_env_and_follows_from_file(
    engine: DockerClient, images: BuiltImages, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (tmp_path / "extra.rb").write_text("nginx['listen_port'] = 8181\n")
    (config / "gitlab.rb").write_text(
        "external_url 'http://from-gitlab-rb.test'\nfrom_file('/extra/extra.rb')\n"
    )
    with running(
        engine,
        images.standin,
        LABELS,
        envs={"GITLAB_OMNIBUS_CONFIG": OMNIBUS},
        volumes=[(str(config), "/etc/gitlab"), (str(tmp_path), "/extra")],
        publish=[("127.0.0.1:", 8181)],
        **FAST_HEALTH,
    ) as container:
        assert wait_health(engine, container, "healthy") == "healthy"
        answer = http(f"http://127.0.0.1:{published_port(container, 8181)}/help")
    assert answer.status == 200
    assert "http://from-gitlab-rb.test" in answer.body
    assert "demo.scm.alpha" not in answer.body


def test_waits_before_ready_and_logs_health_transitions(gitlab: Container) -> None:
    log = events(gitlab)
    steps = [f"{c} {m.split()[0]}" for _, c, m in log]
    assert (
        steps.index("reconfigure start")
        < steps.index("service start")
        < steps.index("healthcheck pass")
    )
    # The ready delay is real: the first health check failed before one passed.
    assert steps.index("healthcheck fail") < steps.index("healthcheck pass")
    stamps = [t for t, _, _ in log]
    assert stamps == sorted(stamps)


def test_never_healthy_switch_turns_unhealthy(engine: DockerClient, images: BuiltImages) -> None:
    with running(engine, images.standin_unhealthy, LABELS, **FAST_HEALTH) as container:
        assert wait_health(engine, container, "unhealthy", timeout=30) == "unhealthy"


def test_probes_answer_404_outside_the_allowlist(gitlab: Container) -> None:
    port = published_port(gitlab, 80)
    # From the host, the request comes from the bridge gateway: not allowlisted.
    for path in ("/-/health", "/-/readiness", "/-/liveness"):
        answer = http(f"http://127.0.0.1:{port}{path}")
        assert (answer.status, answer.body) == (404, "")
    assert exec_text(gitlab, "curl", "-s", "http://localhost/-/health") == "GitLab OK"
    readiness = json.loads(exec_text(gitlab, "curl", "-s", "http://localhost/-/readiness"))
    assert readiness["status"] == "ok"
    assert json.loads(exec_text(gitlab, "curl", "-s", "http://localhost/-/liveness")) == {
        "status": "ok"
    }


# --- API, wikis, git over HTTP -------------------------------------------------------


def test_api_needs_a_token_and_reports_the_version(gitlab: Container) -> None:
    assert api(gitlab, "/version", token=None)[0] == 401
    assert api(gitlab, "/version", token="wrong")[0] == 401
    status, body = api(gitlab, "/version")
    assert status == 200
    assert body["version"] == STANDIN_VERSIONS[0]  # type: ignore[index]


def test_token_script_is_never_logged(gitlab: Container) -> None:
    logs = exec_text(gitlab, "sh", "-c", "cat /var/log/gitlab/*/* 2>/dev/null || true")
    assert TOKEN not in logs


def test_projects_and_wikis_with_gitlab_field_names(gitlab: Container) -> None:
    status, project = api(gitlab, "/projects", {"name": "Wiki Demo"})
    assert status == 201
    assert isinstance(project, dict)
    assert project["path_with_namespace"] == "root/wiki-demo"
    assert project["http_url_to_repo"] == "http://demo.scm.alpha.kytes.test/root/wiki-demo.git"
    assert (
        project["ssh_url_to_repo"] == "ssh://git@demo.scm.alpha.kytes.test:2222/root/wiki-demo.git"
    )
    assert api(gitlab, "/projects", {"name": "Wiki Demo"})[0] == 400
    status, page = api(
        gitlab,
        f"/projects/{project['id']}/wikis",
        {"title": "Runbook", "content": "# Restore\nsteps"},
    )
    assert (status, page["slug"]) == (201, "Runbook")  # type: ignore[index]
    status, pages = api(gitlab, "/projects/root%2Fwiki-demo/wikis?with_content=1")
    assert pages == [
        {
            "format": "markdown",
            "slug": "Runbook",
            "title": "Runbook",
            "encoding": "UTF-8",
            "content": "# Restore\nsteps",
        }
    ]
    listed = api(gitlab, "/projects")[1]
    assert "root/wiki-demo" in [p["path_with_namespace"] for p in listed]  # type: ignore[union-attr]


def test_git_push_and_clone_over_http_with_basic_auth(gitlab: Container, tmp_path: Path) -> None:
    assert api(gitlab, "/projects", {"name": "code"})[0] == 201
    pushed = push_commits(gitlab, "code", tmp_path)
    port = published_port(gitlab, 80)
    clone = tmp_path / "clone"
    # A personal access token works as the password too, as on GitLab.
    git("clone", "-q", f"http://root:{TOKEN}@127.0.0.1:{port}/root/code.git", str(clone))
    assert git("rev-list", "main", cwd=clone).split() == pushed
    refused = subprocess.run(
        [
            "git",
            "clone",
            "-q",
            f"http://root:wrong@127.0.0.1:{port}/root/code.git",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "Authentication failed" in refused.stderr
    auth = base64.b64encode(f"root:{ROOT_PASSWORD}".encode()).decode()
    missing = http(
        f"http://127.0.0.1:{port}/root/nope.git/info/refs?service=git-upload-pack",
        {"Authorization": f"Basic {auth}"},
    )
    assert missing.status == 404


# --- gitlab-ctl ------------------------------------------------------------------------


def test_ctl_stop_and_start_services(engine: DockerClient, images: BuiltImages) -> None:
    with boot(engine, images.standin) as container:
        assert exec_rc(container, "gitlab-ctl", "status").returncode == 0
        assert exec_rc(container, "gitlab-ctl", "stop", "puma").returncode == 0
        status = exec_rc(container, "gitlab-ctl", "status")
        assert status.returncode == 3
        assert "down: puma" in status.stdout and "run: sidekiq" in status.stdout
        # With puma down, the healthcheck fails like the real one does during a restore.
        assert exec_rc(container, "gitlab-healthcheck", "--fail", "--max-time", "2").returncode != 0
        assert exec_rc(container, "gitlab-ctl", "start").returncode == 0
        assert exec_rc(container, "gitlab-ctl", "status").returncode == 0
        assert exec_rc(container, "gitlab-ctl", "stop", "nginx-typo").returncode != 0


def test_backup_etc_writes_a_private_tar_of_etc_gitlab(gitlab: Container) -> None:
    out = exec_rc(gitlab, "gitlab-ctl", "backup-etc", "-p", "/var/opt/gitlab/etc-backups")
    assert out.returncode == 0, out.stderr
    archive = re.search(r"complete: (\S+)", out.stdout).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(
        r"/var/opt/gitlab/etc-backups/gitlab_config_\d+_\d{4}_\d\d_\d\d\.tar", archive
    )
    assert exec_text(gitlab, "stat", "-c", "%a", archive) == "600"
    assert exec_text(gitlab, "stat", "-c", "%a", "/var/opt/gitlab/etc-backups") == "700"
    members = exec_text(gitlab, "tar", "-tf", archive).split()
    assert "/etc/gitlab/gitlab-secrets.json" in members


def test_rails_runner_refuses_other_scripts(gitlab: Container) -> None:
    out = exec_rc(gitlab, "gitlab-rails", "runner", "-", stdin="User.delete_all")
    assert out.returncode != 0


# --- gitlab-backup and doctor:secrets ----------------------------------------------


def backup(container: Container) -> str:
    out = exec_rc(container, "gitlab-backup", "create", "STRATEGY=copy")
    assert out.returncode == 0, out.stderr
    return re.search(r"Backup (\S+) is done", out.stdout).group(1)  # type: ignore[union-attr]


def copy_backup(
    engine: DockerClient,
    source: Container,
    target: Container,
    backup_id: str,
    tmp_path: Path,
    with_secrets: bool,
) -> None:
    name = f"{backup_id}_gitlab_backup.tar"
    engine.copy((source, f"/var/opt/gitlab/backups/{name}"), tmp_path / name)
    engine.copy(tmp_path / name, (target, f"/var/opt/gitlab/backups/{name}"))
    exec_text(target, "chown", "git:git", f"/var/opt/gitlab/backups/{name}")
    if with_secrets:
        engine.copy((source, "/etc/gitlab/gitlab-secrets.json"), tmp_path / "secrets.json")
        engine.copy(tmp_path / "secrets.json", (target, "/etc/gitlab/gitlab-secrets.json"))


def hashed(project: object) -> str:
    """A project's repository path in hashed storage (app/models/storage/hashed.rb)."""
    assert isinstance(project, dict)
    digest = hashlib.sha256(str(project["id"]).encode()).hexdigest()
    return f"@hashed/{digest[:2]}/{digest[2:4]}/{digest}"


def test_backup_archive_holds_database_and_every_repository(gitlab: Container) -> None:
    _, project = api(gitlab, "/projects", {"name": "archived"})
    api(gitlab, "/projects/root%2Farchived/wikis", {"title": "Home", "content": "hi"})
    backup_id = backup(gitlab)
    # Real CE ids carry no edition suffix (reference E2).
    assert re.fullmatch(rf"\d+_\d{{4}}_\d\d_\d\d_{STANDIN_VERSIONS[0]}", backup_id)
    path = f"/var/opt/gitlab/backups/{backup_id}_gitlab_backup.tar"
    assert exec_text(gitlab, "stat", "-c", "%a %u", path) == "600 998"
    members = exec_text(gitlab, "tar", "-tf", path).split()
    assert "db/database.sql.gz" in members
    assert f"repositories/{hashed(project)}.wiki.bundle" in members
    assert "backup_information.yml" in members


def test_restore_brings_back_commits_and_secrets_matter(
    engine: DockerClient, images: BuiltImages, gitlab: Container, tmp_path: Path
) -> None:
    _, project = api(gitlab, "/projects", {"name": "restored"})
    pushed = push_commits(gitlab, "restored", tmp_path)
    backup_id = backup(gitlab)
    for with_secrets in (True, False):
        with boot(engine, images.standin) as target:
            copy_backup(engine, gitlab, target, backup_id, tmp_path, with_secrets)
            if with_secrets:
                assert exec_rc(target, "gitlab-ctl", "reconfigure").returncode == 0
            refused = exec_rc(
                target,
                "gitlab-backup",
                "restore",
                f"BACKUP={backup_id}",
                env={"GITLAB_ASSUME_YES": "1"},
            )
            assert refused.returncode != 0 and "stop them first" in refused.stderr
            exec_rc(target, "gitlab-ctl", "stop", "puma")
            exec_rc(target, "gitlab-ctl", "stop", "sidekiq")
            quit_at_prompt = exec_rc(target, "gitlab-backup", "restore", f"BACKUP={backup_id}")
            assert quit_at_prompt.returncode != 0 and "Quitting" in quit_at_prompt.stdout
            done = exec_rc(
                target,
                "gitlab-backup",
                "restore",
                f"BACKUP={backup_id}",
                env={"GITLAB_ASSUME_YES": "1"},
            )
            assert done.returncode == 0, done.stderr
            exec_rc(target, "gitlab-ctl", "start")
            restored = exec_text(
                target,
                "git",
                f"--git-dir=/var/opt/gitlab/git-data/repositories/{hashed(project)}.git",
                "rev-list",
                "main",
            ).split()
            assert restored == pushed
            doctor = exec_rc(target, "gitlab-rake", "gitlab:doctor:secrets")
            # Like GitLab, the task exits 0 either way: only its output tells (reference F6).
            assert doctor.returncode == 0 and "Done!" in doctor.stdout
            total = re.search(r"Total: (\d+) row\(s\) affected", doctor.stdout)
            assert total is not None
            if with_secrets:
                assert total.group(1) == "0" and "failures: 0" in doctor.stdout
            else:
                assert int(total.group(1)) > 0
                assert re.search(r"- \S+ failures: [1-9]", doctor.stdout)


def test_restore_refuses_another_version_naming_both(
    engine: DockerClient, images: BuiltImages, gitlab: Container, tmp_path: Path
) -> None:
    backup_id = backup(gitlab)
    with boot(engine, images.standin_other) as target:
        copy_backup(engine, gitlab, target, backup_id, tmp_path, with_secrets=True)
        exec_rc(target, "gitlab-ctl", "stop")
        out = exec_rc(
            target,
            "gitlab-backup",
            "restore",
            f"BACKUP={backup_id}",
            env={"GITLAB_ASSUME_YES": "1"},
        )
        assert out.returncode == 1
        assert "GitLab version mismatch" in out.stderr
        assert f"Your current GitLab version ({STANDIN_VERSIONS[1]})" in out.stderr
        assert f"version: {STANDIN_VERSIONS[0]}" in out.stderr


def test_unknown_backup_id_is_refused(gitlab: Container) -> None:
    out = exec_rc(
        gitlab, "gitlab-backup", "restore", "BACKUP=0_nope", env={"GITLAB_ASSUME_YES": "1"}
    )
    assert out.returncode == 1 and "does not exist" in out.stderr


def test_reconfigure_by_exec_is_logged_as_such(gitlab: Container) -> None:
    assert exec_rc(gitlab, "gitlab-ctl", "reconfigure").returncode == 0
    sources = [m for _, c, m in events(gitlab) if c == "reconfigure" and m.startswith("start")]
    assert sources[0] == "start source=boot"
    assert sources[-1] == "start source=exec"


def test_image_carries_its_version(engine: DockerClient, images: BuiltImages) -> None:
    for tag, version in (
        (images.standin, STANDIN_VERSIONS[0]),
        (images.standin_other, STANDIN_VERSIONS[1]),
    ):
        image = engine.image.inspect(tag)
        assert image.config.labels["org.opencontainers.image.version"] == version
        assert image.config.healthcheck is not None
        assert image.config.healthcheck.test[-1].endswith("--max-time 10")


# --- as strict as the real image (reference: gitlab-real-behaviour.md) --------------------


def test_api_paginates_at_most_100_per_page(gitlab: Container) -> None:
    # 105 projects in one exec: the API answers from inside the container.
    script = (
        'for i in $(seq 1 105); do curl -sf -o /dev/null -H "PRIVATE-TOKEN: $T" '
        '-d "name=paged-$i" http://localhost/api/v4/projects || exit 1; done'
    )
    assert exec_rc(gitlab, "sh", "-c", script, env={"T": TOKEN}).returncode == 0
    port = published_port(gitlab, 80)
    first = http(f"http://127.0.0.1:{port}/api/v4/projects?per_page=500", {"PRIVATE-TOKEN": TOKEN})
    assert len(json.loads(first.body)) == 100  # per_page is capped at 100
    assert first.headers["X-Per-Page"] == "100" and first.headers["X-Next-Page"] == "2"
    assert 'rel="next"' in first.headers["Link"]
    pages = int(first.headers["X-Total-Pages"])
    seen = []
    for page in range(1, pages + 1):
        answer = http(
            f"http://127.0.0.1:{port}/api/v4/projects?per_page=100&page={page}",
            {"PRIVATE-TOKEN": TOKEN},
        )
        seen += [p["path"] for p in json.loads(answer.body)]
    assert answer.headers["X-Next-Page"] == ""
    assert len(seen) == len(set(seen)) == int(first.headers["X-Total"]) >= 105
    default = http(f"http://127.0.0.1:{port}/api/v4/projects", {"PRIVATE-TOKEN": TOKEN})
    assert len(json.loads(default.body)) == 20


def test_disabled_wiki_answers_403_even_to_root(gitlab: Container) -> None:
    status, project = api(gitlab, "/projects", {"name": "no-wiki"})
    assert status == 201 and project["wiki_access_level"] == "enabled"  # type: ignore[index]
    port = published_port(gitlab, 80)
    edited = http(
        f"http://127.0.0.1:{port}/api/v4/projects/root%2Fno-wiki",
        {"PRIVATE-TOKEN": TOKEN, "Content-Type": "application/json"},
        json.dumps({"wiki_access_level": "disabled"}).encode(),
        method="PUT",
    )
    assert json.loads(edited.body)["wiki_enabled"] is False
    assert api(gitlab, "/projects/root%2Fno-wiki/wikis")[0] == 403
    assert api(gitlab, "/projects/root%2Fno-wiki/wikis", {"title": "x", "content": "y"})[0] == 403


def test_unknown_gitlab_rb_root_fails_reconfigure_and_crash_loops_the_boot(
    engine: DockerClient, images: BuiltImages, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    with running(
        engine,
        images.standin,
        LABELS,
        envs={"GITLAB_OMNIBUS_CONFIG": OMNIBUS},
        volumes=[(str(config), "/etc/gitlab")],
        restart="unless-stopped",
        **FAST_HEALTH,
    ) as container:
        assert wait_health(engine, container, "healthy") == "healthy"
        before = exec_text(container, "cat", "/run/standin/config.json")
        (config / "gitlab.rb").write_text("gitlab_rail['time_zone'] = 'UTC'\n")
        out = exec_rc(container, "gitlab-ctl", "reconfigure")
        assert out.returncode == 1
        assert "Reading unsupported config value gitlab_rail." in out.stderr
        assert exec_text(container, "cat", "/run/standin/config.json") == before
        # At the next start, the boot's reconfigure fails and PID 1 exits: a crash loop.
        engine.container.restart(container)

        def restarted_twice() -> bool:
            container.reload()
            return container.restart_count >= 2

        assert wait_until(restarted_twice, 60)
        assert "Reading unsupported config value gitlab_rail." in engine.container.logs(container)


def test_backup_lock_refuses_a_second_run_and_outlives_its_client(gitlab: Container) -> None:
    client = subprocess.Popen(
        [
            "docker",
            "exec",
            "-e",
            "GITLAB_STANDIN_BACKUP_SECONDS=8",
            gitlab.id,
            "gitlab-backup",
            "create",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pid_file = "/opt/gitlab/embedded/service/gitlab-rails/tmp/backup_restore.pid"
    assert wait_until(lambda: exec_rc(gitlab, "test", "-s", pid_file).returncode == 0, 30)
    pid = exec_text(gitlab, "cat", pid_file)
    client.kill()  # the client goes; on a real engine the process in the container stays
    client.wait()
    assert exec_rc(gitlab, "test", "-d", f"/proc/{pid}").returncode == 0
    second = exec_rc(gitlab, "gitlab-backup", "create")
    assert second.returncode == 1 and "Backup and restore in progress" in second.stdout
    hidden = exec_rc(gitlab, "gitlab-backup", "create", "CRON=1")
    assert hidden.returncode == 1 and hidden.stdout == hidden.stderr == ""
    assert wait_until(lambda: exec_rc(gitlab, "test", "-e", pid_file).returncode != 0, 60)
    assert exec_rc(gitlab, "gitlab-backup", "create", "CRON=1").returncode == 0


def test_sigkill_during_shutdown_leaves_a_crash_that_the_next_boot_recovers(
    engine: DockerClient, images: BuiltImages
) -> None:
    with boot(
        engine,
        images.standin,
        envs={"GITLAB_STANDIN_STOP_SECONDS": "6", "GITLAB_STANDIN_RECOVERY_SECONDS": "1"},
    ) as container:
        # The CLI, not python-on-whales: its stop(time=<int>) drops the value (1.x).
        subprocess.run(["docker", "stop", "-t", "30", container.id], check=True)  # clean
        engine.container.start(container)
        assert wait_health(engine, container, "healthy") == "healthy"
        assert not [m for _, c, m in events(container) if c == "postgresql"]
        # SIGKILL in the middle of the shutdown:
        subprocess.run(["docker", "stop", "-t", "1", container.id], check=True)
        engine.container.start(container)
        assert wait_health(engine, container, "healthy") == "healthy"
        log = [m for _, c, m in events(container) if c == "postgresql"]
        assert log[:1] and log[0].startswith("crash:"), events(container)
        assert log[1] == "recovered from crash"


def test_rc_file_is_optional_from_19_1(engine: DockerClient, images: BuiltImages) -> None:
    rc = "/opt/gitlab/etc/gitlab-healthcheck-rc"
    for image, passes in ((images.standin, False), (images.standin_rc_optional, True)):
        with boot(engine, image) as container:
            # From 19.1 "healthy" comes before the boot's reconfigure writes the file (the
            # very behaviour tested here): wait for the file itself.
            assert wait_until(lambda: exec_rc(container, "test", "-f", rc).returncode == 0, 60)
            exec_text(container, "rm", rc)
            check = exec_rc(container, "gitlab-healthcheck", "--fail", "--max-time", "2")
            assert (check.returncode == 0) is passes, (image, check.stderr)


def test_reconfigure_restarts_puma_when_the_config_changed(
    engine: DockerClient, images: BuiltImages, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    with boot(
        engine,
        images.standin,
        volumes=[(str(config), "/etc/gitlab")],
        envs={"GITLAB_STANDIN_READY_SECONDS": "4"},
    ) as container:
        assert wait_until(
            lambda: (
                exec_rc(container, "curl", "-sf", "http://localhost/-/readiness").returncode == 0
            ),
            30,
        )
        assert exec_rc(container, "gitlab-ctl", "reconfigure").returncode == 0  # no change
        assert exec_rc(container, "curl", "-sf", "http://localhost/help").returncode == 0
        (config / "gitlab.rb").write_text("gitlab_rails['time_zone'] = 'Europe/Paris'\n")
        assert exec_rc(container, "gitlab-ctl", "reconfigure").returncode == 0
        status = exec_text(
            container,
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://localhost/help",
        )
        assert status == "502"
        ready = exec_rc(container, "curl", "-sf", "http://localhost/-/readiness")
        assert ready.returncode != 0


# --- upgrades: required stops, migrations, batched background migrations -------------

BBM_QUERY = (
    "SELECT job_class_name, table_name, column_name, job_arguments "
    "FROM batched_background_migrations WHERE status NOT IN (3, 6);"
)


def boot_failure(engine: DockerClient, image: str, volumes: list[tuple[str, str]]) -> str:
    """Start ``image`` on ``volumes``, expecting init to fail: its exit code 1 and logs."""
    with running(
        engine, image, LABELS, envs={"GITLAB_OMNIBUS_CONFIG": OMNIBUS}, volumes=volumes
    ) as container:

        def exited() -> bool:
            container.reload()
            return not container.state.running

        assert wait_until(exited, 60)
        assert container.state.exit_code == 1
        return engine.container.logs(container)


def pending_rows(container: Container) -> list[str]:
    out = exec_text(container, "gitlab-psql", "-c", BBM_QUERY).splitlines()
    assert re.fullmatch(r"\((\d+) rows?\)", out[-1]), out
    return out[2:-1]


def test_upgrades_stop_at_each_required_stop_and_wait_for_background_migrations(
    engine: DockerClient, images: BuiltImages, tmp_path: Path
) -> None:
    volumes = [
        (str(tmp_path / d), f"/{p}") for d, p in (("c", "etc/gitlab"), ("d", "var/opt/gitlab"))
    ]
    with boot(engine, images.standin_before_stop, volumes=volumes) as old:
        assert pending_rows(old) == []  # a new install has none
    # 18.8 -> 19.0 skips the 18.11 stop: init-container's upgrade-check ends the boot.
    logs = boot_failure(engine, images.standin_other, volumes)
    assert "It seems you are upgrading from 18.8.11 to 19.0.1." in logs
    assert (
        "It is required to upgrade to the latest 18.11.x version first before proceeding." in logs
    )
    slow = {"GITLAB_STANDIN_BBM_SECONDS": "600"}
    with boot(engine, images.standin, envs=slow, volumes=volumes) as stop:
        rows = pending_rows(stop)
        assert [r.split("|")[1].strip() for r in rows] == ["issues", "ci_runner_machines"]
        status = exec_text(stop, "gitlab-rake", "gitlab:background_migrations:status")
        assert re.search(
            r"^active     \| BackfillProjectNamespaceOnIssuesV181111,issues,id,\[\]$", status, re.M
        )
        assert exec_text(stop, "cat", "/var/opt/gitlab/gitlab-rails/VERSION") == "18.11.11"
    # The next stop's migrations refuse to run while those are active.
    logs = boot_failure(engine, images.standin_other, volumes)
    assert "to be marked as 'finished', but it is 'active'" in logs
    with boot(
        engine, images.standin, envs={"GITLAB_STANDIN_BBM_SECONDS": "0"}, volumes=volumes
    ) as stop:
        assert wait_until(lambda: pending_rows(stop) == [], 30)
    with boot(engine, images.standin_other, volumes=volumes) as new:
        assert exec_text(new, "cat", "/var/opt/gitlab/gitlab-rails/VERSION") == "19.0.1"
    # Back on 18.11 with 19.0's schema: it does not start.
    logs = boot_failure(engine, images.standin, volumes)
    assert "the database schema is of GitLab 19.0.1, newer than this GitLab (18.11.11)" in logs


def test_a_failed_migration_leaves_the_schema_half_moved(
    engine: DockerClient, images: BuiltImages, tmp_path: Path
) -> None:
    config, data = tmp_path / "c", tmp_path / "d"
    volumes = [(str(config), "/etc/gitlab"), (str(data), "/var/opt/gitlab")]
    with boot(engine, images.standin_before_stop, volumes=volumes):
        pass
    (config / "standin-switches.json").write_text(json.dumps({"migration_fail": 1}))
    assert "all later migrations canceled" in boot_failure(engine, images.standin, volumes)
    (config / "standin-switches.json").unlink()
    # The old version no longer starts on that data: only a backup brings it back.
    assert "newer than this GitLab (18.8.11)" in boot_failure(
        engine, images.standin_before_stop, volumes
    )

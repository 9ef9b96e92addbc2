"""A host with only Docker: in a container that has the docker CLI and the engine's socket
(no Python, no git), girofle-docker is installed with the README's one line, sets the host
up, and runs Girofle's commands (init, new-stack, ls, backup, restore) as the `girofle`
user."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from girofle.config import ToolsSettings
from girofle.tools_image import ensure_tools_image
from tests.fleet import TOOLS_IMAGE, instance_name, remove_home_resources
from tests.helpers import SESSION, TEST_LABEL, session_home_id
from tests.images.build import BuiltImages

pytestmark = pytest.mark.engine

DOCKER_ONLY = f"girofle-test/docker-only:{SESSION}"
INSTALL = (
    f"docker run --rm {TOOLS_IMAGE} girofle host wrapper > /usr/local/bin/girofle-docker"
    " && chmod 0755 /usr/local/bin/girofle-docker"
)


def build_docker_only(base: str, workdir: Path) -> str:
    """The test base with the host's (static) docker CLI, and no Python and no git."""
    docker = shutil.which("docker")
    assert docker is not None
    shutil.copy(docker, workdir / "docker")
    (workdir / "Dockerfile").write_text(
        f"FROM {base}\n"
        "COPY docker /usr/local/bin/docker\n"
        "RUN rm -rf /usr/bin/python3* /usr/lib/python3* /usr/bin/git /usr/lib/git-core \\\n"
        " && ! command -v python3 && ! command -v git\n"
    )
    subprocess.run(
        ["docker", "build", "-q", "-t", DOCKER_ONLY, str(workdir)],
        check=True,
        capture_output=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    return DOCKER_ONLY


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A directory at the same path on the engine's host and in the Docker-only host."""
    directory = Path(tempfile.mkdtemp(prefix="girofle-docker-only-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_girofle_docker_on_a_host_with_only_docker(
    images: BuiltImages, engine: DockerClient, host_dir: Path, tmp_path: Path
) -> None:
    ensure_tools_image(ToolsSettings(base_image=images.base, image=TOOLS_IMAGE))
    image = build_docker_only(images.base, tmp_path)
    home, home_id = host_dir / "home", session_home_id()
    host = engine.run(
        image,
        ["sleep", "infinity"],
        detach=True,
        remove=True,
        labels={TEST_LABEL: SESSION},
        volumes=[
            ("/var/run/docker.sock", "/var/run/docker.sock"),
            (str(host_dir), str(host_dir)),
            ("/run/lock", "/run/lock"),
        ],
        envs={"GIROFLE_HOME": str(home), "GIROFLE_IMAGE": TOOLS_IMAGE},
    )

    def on_host(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "exec", host.id, "bash", "-c", script],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    try:
        assert on_host("command -v python3 git").stdout == ""
        installed = on_host(INSTALL)
        assert installed.returncode == 0, installed.stderr
        setup = on_host("girofle-docker setup")
        assert setup.returncode == 0, setup.stderr
        assert "created the system user and group girofle" in setup.stderr
        again = on_host("girofle-docker setup")
        assert again.returncode == 0, again.stderr
        assert again.stderr.strip().splitlines()[-1] == (
            "girofle-docker: nothing to do: this host is set up for Girofle (user girofle)"
        )
        uid = int(on_host("id -u girofle").stdout)

        name = instance_name("solo")
        init = on_host(
            f"girofle-docker init --yes --routing ports --no-first-instance --home-id {home_id}"
            f" --gitlab-image {images.standin} --tools-base-image {images.base}"
            f" -c tools.image={TOOLS_IMAGE} -c gitlab.healthcheck.interval=1s"
            " -c gitlab.healthcheck.start_period=60s"
        )
        assert init.returncode == 0, init.stderr
        made = on_host(f"girofle-docker new-stack {name}")
        assert made.returncode == 0, made.stderr
        listed = on_host("girofle-docker ls --json")
        assert [(r["name"], r["state"]) for r in json.loads(listed.stdout)] == [(name, "healthy")]
        gid = int(on_host("id -g girofle").stdout)
        sidecar = engine.container.inspect(f"gitlab-{name}-backup")
        assert sidecar.config.user == f"{uid}:{gid}"  # its backups are girofle's files too
        # GitLab's backup directory is git's (0700): the girofle user reaches it only
        # through the engine.
        backup = on_host(f"girofle-docker backup {name}")
        assert backup.returncode == 0, backup.stderr
        backup_id = backup.stdout.strip()
        restored = on_host(f"girofle-docker restore {name} --backup {backup_id} --force --json")
        assert restored.returncode == 0, restored.stderr
        assert json.loads(restored.stdout)["backup"] == backup_id
        listed = on_host("girofle-docker ls --json")
        assert [(r["name"], r["state"]) for r in json.loads(listed.stdout)] == [(name, "healthy")]

        # Everything of Girofle's is girofle's; GitLab's volumes belong to its image's users.
        for path in [home, *home.rglob("*")]:
            if "mapping-volumes" not in path.parts[:-1]:
                assert path.lstat().st_uid == uid, path
        secrets = [home / "secrets", *(home / "secrets").rglob("*")]
        assert any(p.is_file() for p in secrets)
        for path in secrets:
            assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
        logs = sorted(p.name for p in (home / "logs").iterdir())
        assert any("-new-stack-" in log for log in logs), logs
    finally:
        remove_home_resources(engine, home_id)
        engine.container.remove(host.id, force=True)
        subprocess.run(["docker", "rmi", "-f", DOCKER_ONLY], capture_output=True, check=False)


def test_host_setup_in_place_is_idempotent_and_the_home_is_girofles(
    images: BuiltImages, engine: DockerClient
) -> None:
    # Girofle's image, as root, stands in for a host with Python: `girofle host setup` makes
    # the user there (never on the machine running the tests).
    ensure_tools_image(ToolsSettings(base_image=images.base, image=TOOLS_IMAGE))
    script = """
set -e
export GIROFLE_HOME=/srv/girofle
mkdir -p $GIROFLE_HOME/secrets/instances/a && echo pw > $GIROFLE_HOME/secrets/instances/a/pw
chmod 0644 $GIROFLE_HOME/secrets/instances/a/pw
girofle host setup 2>&1 | sed 's/^/first: /'
girofle host setup 2>&1 | sed 's/^/second: /'
a=$GIROFLE_HOME/secrets/instances/a
stat -c '%U %a %n' $GIROFLE_HOME $a $a/pw
id -nG girofle
setpriv --reuid=65534 --regid=65534 --clear-groups girofle ls 2>&1 | sed 's/^/nobody: /' || true
girofle ls 2>&1 | sed 's/^/root: /' || true
"""
    out = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock",
            "--label",
            f"{TEST_LABEL}={SESSION}",
            TOOLS_IMAGE,
            "bash",
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.splitlines()
    first = [line for line in out if line.startswith("first: ")]
    assert "first: created the system user and group girofle" in first
    assert any("the group of /var/run/docker.sock (root-equivalent)" in line for line in first)
    assert [line for line in out if line.startswith("second: ")] == [
        "second: girofle: warning: running as root in a home that belongs to girofle "
        "(files made now are root's)",
        "second: nothing to do: this host is set up for Girofle (user girofle)",
    ]
    assert "girofle 700 /srv/girofle/secrets/instances/a" in out
    assert "girofle 600 /srv/girofle/secrets/instances/a/pw" in out
    assert [line for line in out if line.startswith("nobody: ")] == [
        "nobody: girofle: /srv/girofle belongs to girofle: run Girofle as girofle "
        "(sudo -u girofle girofle ...)"
    ]
    assert any(line.startswith("root: girofle: warning: running as root") for line in out)

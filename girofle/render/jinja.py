"""The Jinja environment: sandboxed, StrictUndefined, loading only from the template root."""

from __future__ import annotations

import json
import shlex
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from girofle.render.gitlab_rb import ruby_value


def templates_root() -> Path:
    """The templates shipped in the wheel, or the checkout's top-level templates/."""
    packaged = Path(__file__).resolve().parent.parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def yaml_scalar(value: Any) -> str:
    """A YAML scalar that keeps its exact value (JSON strings are valid YAML)."""
    return json.dumps(str(value))


@cache
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_root())),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["yaml"] = yaml_scalar
    env.filters["rb"] = ruby_value  # the one Ruby escaper
    env.filters["sh"] = shlex.quote  # the one shell escaper
    return env


def render(template: str, context: dict[str, Any]) -> bytes:
    """Render one template (a path under the template root) to bytes."""
    text = environment().get_template(template).render(**context)
    return text.encode()

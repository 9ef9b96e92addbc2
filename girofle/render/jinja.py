"""The Jinja environment: sandboxed, StrictUndefined, loading only from the template root."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment


def templates_root() -> Path:
    """The templates shipped in the wheel, or the checkout's top-level templates/."""
    packaged = Path(__file__).resolve().parent.parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def yaml_scalar(value: Any) -> str:
    """A YAML scalar that keeps its exact value (JSON strings are valid YAML)."""
    return json.dumps(str(value))


def ruby_literal(value: Any) -> str:
    """A Ruby literal for a gitlab.rb value: strings single-quoted, lists, booleans, numbers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(ruby_literal(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


@cache
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_root())),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["yaml"] = yaml_scalar
    env.filters["rb"] = ruby_literal
    return env


def render(template: str, context: dict[str, Any]) -> bytes:
    """Render one template (a path under the template root) to bytes."""
    text = environment().get_template(template).render(**context)
    return text.encode()

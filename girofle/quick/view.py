"""What the quick commands need of girofle.yml, as the full validation last read it.

Reading YAML and validating girofle.yml is most of a short command's time (PyYAML,
pydantic and the models). So a full `ls` that succeeded leaves here the few settings the
quick one needs, computed by the same functions the full path uses, with the very text
they came from. A quick command uses them only while girofle.yml is still that text
(compared whole: a digest would cost more to import than comparing a few kilobytes does);
any other girofle.yml, or no view, sends it to the full path, which validates the file
(refusing a bad one as before) and writes the view again. No other command writes it, so
bad input still changes nothing in the home.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from girofle.home import Home, atomic_write

VIEW_VERSION = 3  # 3: the settings of `routes`
VIEW_FILE = ".girofle.yml.view.json"


def view_file(home: Home) -> Path:
    """Where the view lives: beside girofle.yml, in the home."""
    return home.root / VIEW_FILE


def remember(home: Home, source: bytes, settings: dict[str, Any]) -> None:
    """Record ``settings`` as what girofle.yml's ``source`` bytes say (written only when it
    changes). A home the process cannot write keeps its view: `ls` only goes the full path."""
    text = json.dumps(
        {"version": VIEW_VERSION, "source": source.decode("utf-8"), "settings": settings},
        indent=2,
        sort_keys=True,
    )
    path = view_file(home)
    try:
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return
        atomic_write(path, text)
    except OSError:
        return


def recall(home: Home) -> dict[str, Any] | None:
    """The settings recorded for girofle.yml as it is now, or None (no view, another
    version of it, or girofle.yml changed since)."""
    try:
        recorded = json.loads(view_file(home).read_text(encoding="utf-8"))
        source = home.config_file.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or recorded.get("version") != VIEW_VERSION:
        return None
    if recorded.get("source") != source.decode("utf-8", errors="replace"):
        return None
    settings = recorded.get("settings")
    return settings if isinstance(settings, dict) else None

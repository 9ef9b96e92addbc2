"""Named durations of an operation's parts, for reports and benchmarks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def timed(durations: dict[str, float], part: str) -> Iterator[None]:
    """Add the seconds the block took to ``durations[part]`` (also when it fails)."""
    started = time.monotonic()
    try:
        yield
    finally:
        durations[part] = round(durations.get(part, 0.0) + time.monotonic() - started, 3)

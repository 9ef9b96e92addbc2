"""Tables on a terminal fit its width without losing a character, or go wide on demand."""

from __future__ import annotations

import re

import pytest

from girofle.cli.output import table

URL = "https://" + "a-very-long-project-name." * 4 + "scm.some-instance.kytes.io/"
ROWS = [["alpha", "healthy", URL, "127.0.0.1:2222"]]
HEADERS = ["name", "state", "urls", "ssh"]
STYLE = re.compile(r"\x1b\[[0-9;]*m")


def printed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [STYLE.sub("", line).rstrip() for line in capsys.readouterr().out.splitlines()]


def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 100-column terminal (patched in the test itself: capture swaps sys.stdout)."""
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)


def test_a_long_url_wraps_within_100_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal(monkeypatch)
    table(HEADERS, ROWS)
    lines = printed(capsys)
    assert max(len(line) for line in lines) <= 100
    folded = "".join(line.split("healthy")[-1].split("127.0.0.1")[0].strip() for line in lines)
    assert URL in folded  # folded over lines, never cut with an ellipsis
    assert "…" not in "".join(lines)


def test_wide_keeps_each_row_on_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal(monkeypatch)
    table(HEADERS, ROWS, wide=True)
    lines = printed(capsys)
    assert len(lines) == 2 and URL in lines[1]

"""Generated bad (and good) input through the real CLI entry point, in process.

Whatever it is given, Girofle answers with one line on stderr, a documented exit code, no
traceback, and leaves the home's files as they were, byte for byte. The engine is out of
reach on purpose (DOCKER_HOST names no socket), so input that passes validation ends at
the engine check with exit 4, before anything is written.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from girofle.cli import main

HOME_YML = """home_id: fuzz-home
data_root: {root}/data
addresses: [127.0.0.1]
routing: ports
"""
INVENTORY = """{"instances": {"alpha": {"name": "alpha", "state": "running",
"image": "gitlab/gitlab-ce:18.11.11-ce.0", "address": "127.0.0.1", "projects": ["gitlab"],
"ssh": {"address": "127.0.0.1", "port": 2222}, "http": {"address": "127.0.0.1",
"port": 8080}, "subnet": "10.213.0.0/28", "settings": {},
"created_at": "2026-11-27T00:00:00Z"}}}
"""
# Text an operator (or a script gone wrong) could type: names, keys, values, paths.
text = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="abcdefghij-_.=/`'\"{}[]$\n\t 0123456789²é", max_size=30),
    st.sampled_from(
        [
            "alpha",
            "edge",
            "ca",
            "a" * 5000,
            "gitlab_rails.time_zone=UTC",
            "gitlab_rail.time_zone=x",
            "sleep.x=1",
            "a.b=010",
            "external_url.x=y",
            "nginx.listen_port=81",
            "nl\n",
            "--help-me",
            "",
        ]
    ),
)
commands = st.one_of(
    st.tuples(st.just("new-stack"), text),
    st.tuples(st.just("new-stack"), text, st.just("--set"), text),
    st.tuples(st.just("new-stack"), text, st.just("--project"), text),
    st.tuples(st.just("new-stack"), text, st.just("--ssh-port"), text),
    st.tuples(st.just("new-stack"), text, st.just("--address"), text),
    st.tuples(st.just("reconfigure"), st.sampled_from(["alpha", "nope"]), st.just("--set"), text),
    st.tuples(st.just("new-stack"), text, st.just("--set-json"), text),
    st.tuples(st.sampled_from(["start", "stop", "restart", "rm", "backups"]), text),
    st.tuples(st.just("restore"), text, st.just("--as"), text),
    st.tuples(st.just("project"), st.sampled_from(["add", "rm"]), text, text),
    st.tuples(text),
)
# What a refusal may exit with (README): usage 2, conflict 3, engine 4, backup 6.
DOCUMENTED = {2, 3, 4, 6}


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(argv: list[str]) -> tuple[int, str, str]:
    """`girofle ARGV` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["girofle", *argv]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = old_argv
    return code, out.getvalue(), err.getvalue()


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".locks" not in p.parts
    }


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-home")
    (root / "girofle.yml").write_text(HOME_YML.format(root=root))
    (root / "inventory.json").write_text(INVENTORY)
    return root


@seed(20261127)
@settings(
    max_examples=1000,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(argv=commands)
def test_any_input_is_one_line_a_documented_code_and_no_change(
    home: Path, argv: tuple[str, ...]
) -> None:
    before = snapshot(home)
    with environment(GIROFLE_HOME=str(home), DOCKER_HOST="unix:///nonexistent/docker.sock"):
        code, out, err = run(list(argv))
    if code == 0:  # --help, or a listing: output, and nothing changed
        assert "Traceback" not in out + err
    else:
        lines = err.strip().splitlines()
        assert code in DOCUMENTED, (argv, code, err)
        assert len(lines) == 1 and lines[0].startswith("girofle: "), (argv, err)
        assert "Traceback" not in err
    assert snapshot(home) == before, argv

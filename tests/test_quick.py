"""The quick path's parts: which engine it may ask on its socket, its one HTTP request, and
the view of girofle.yml it trusts only while girofle.yml is unchanged."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from girofle.docker import engine_api
from girofle.errors import DockerError, EngineUnavailableError
from girofle.home import Home
from girofle.quick import view


@pytest.fixture
def no_docker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return tmp_path / "docker-config"


def test_only_a_local_socket_is_asked_directly(
    monkeypatch: pytest.MonkeyPatch, no_docker_env: Path
) -> None:
    assert engine_api.local_socket() == "/var/run/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user/1000/docker.sock")
    assert engine_api.local_socket() == "/run/user/1000/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2376")
    assert engine_api.local_socket() is None
    monkeypatch.setenv("DOCKER_HOST", "ssh://admin@host")
    assert engine_api.local_socket() is None
    monkeypatch.delenv("DOCKER_HOST")
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    assert engine_api.local_socket() is None
    monkeypatch.delenv("DOCKER_CONTEXT")
    no_docker_env.mkdir()
    (no_docker_env / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    assert engine_api.local_socket() is None
    (no_docker_env / "config.json").write_text(json.dumps({"currentContext": "default"}))
    assert engine_api.local_socket() == "/var/run/docker.sock"


@pytest.fixture
def answering(tmp_path: Path) -> Iterator[tuple[str, list[bytes], list[bytes]]]:
    """A Unix socket that answers each connection with the next canned reply, and keeps
    what it was sent."""
    path = str(tmp_path / "engine.sock")
    replies: list[bytes] = []
    received: list[bytes] = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            received.append(self.rfile.readline())
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            self.wfile.write(replies.pop(0))

    server = socketserver.UnixStreamServer(path, Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path, replies, received
    server.shutdown()
    server.server_close()


def test_one_get_with_its_filters_and_the_engine_s_refusal(
    answering: tuple[str, list[bytes], list[bytes]],
) -> None:
    path, replies, received = answering
    replies.append(b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[{"Id": "a"}]')
    answer = engine_api.get_json(path, "/containers/json", {"filters": '{"label":["a=b"]}'})
    assert answer == [{"Id": "a"}]
    assert received[0] == (
        b"GET /containers/json?filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D HTTP/1.0\r\n"
    )
    replies.append(b'HTTP/1.0 500 Internal\r\n\r\n{"message": "the daemon broke"}')
    with pytest.raises(DockerError, match="the daemon broke"):
        engine_api.get_json(path, "/containers/json")
    replies.append(b"not http at all")
    with pytest.raises(EngineUnavailableError, match="not HTTP"):
        engine_api.get_json(path, "/containers/json")


def test_no_engine_is_one_line_naming_the_socket(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailableError) as caught:
        engine_api.get_json(str(tmp_path / "absent.sock"), "/containers/json")
    assert str(caught.value) == (
        f"the Docker engine does not answer: cannot connect to unix://{tmp_path}/absent.sock: "
        "No such file or directory"
    )


def test_the_view_holds_only_for_the_text_it_came_from(tmp_path: Path) -> None:
    home = Home(tmp_path)
    config = home.config_file
    config.write_text("home_id: a\n")
    assert view.recall(home) is None  # no view yet
    view.remember(home, config.read_bytes(), {"home_id": "a"})
    assert view.recall(home) == {"home_id": "a"}
    written = view.view_file(home).stat().st_mtime_ns
    view.remember(home, config.read_bytes(), {"home_id": "a"})  # unchanged: not rewritten
    assert view.view_file(home).stat().st_mtime_ns == written
    config.write_text("home_id: a\n# a comment\n")  # the same settings, other text
    assert view.recall(home) is None
    config.unlink()
    assert view.recall(home) is None

"""The engine's API on its local Unix socket, with the standard library alone.

Read-only hot paths (`girofle ls`) ask the engine once over its socket instead of starting
the docker CLI (a Go binary of about 50 MB) or importing a Python client. Only an engine the
CLI would also reach on a local socket is asked this way: DOCKER_HOST set to anything but a
unix:// address, a DOCKER_CONTEXT, or a current context in the CLI's config leave the work
to the CLI, which knows those.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
from pathlib import Path
from typing import Any

from girofle.errors import DockerError, EngineUnavailableError

DEFAULT_SOCKET = "/var/run/docker.sock"
# A listing of containers answers in milliseconds; an engine that takes longer than this
# is one that does not answer.
TIMEOUT = 30.0


def local_socket() -> str | None:
    """The socket the docker CLI would use, when it is a local one; else None."""
    if os.environ.get("DOCKER_CONTEXT"):
        return None
    host = os.environ.get("DOCKER_HOST")
    if host:
        return host.removeprefix("unix://") if host.startswith("unix://") else None
    if _current_context() not in (None, "default"):
        return None
    return DEFAULT_SOCKET


def _current_context() -> str | None:
    """The CLI's current context from its config file (DOCKER_CONFIG, else ~/.docker)."""
    config_dir = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    try:
        data = json.loads((Path(config_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    context = data.get("currentContext") if isinstance(data, dict) else None
    return context if isinstance(context, str) and context else None


def get_json(socket_path: str, path: str, query: dict[str, str] | None = None) -> Any:
    """GET ``path`` from the engine on ``socket_path`` and decode its JSON answer."""
    target = path + ("?" + urllib.parse.urlencode(query) if query else "")
    try:
        status, body = _get(socket_path, target)
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise EngineUnavailableError(
            f"the Docker engine does not answer: cannot connect to unix://{socket_path}: {reason}"
        ) from None
    if status != 200:
        message = _engine_message(body) or f"HTTP {status}"
        raise DockerError(f"the engine refused GET {path}: {message}")
    return json.loads(body)


def _get(socket_path: str, target: str) -> tuple[int, bytes]:
    """One HTTP/1.0 GET on the socket: the engine answers with the whole body and closes
    (HTTP/1.0 has no chunked encoding), so reading to the end is the whole answer.
    http.client would do the same at the cost of importing email and ssl, a third of
    this command's time."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(socket_path)
        sock.sendall(f"GET {target} HTTP/1.0\r\nHost: docker\r\n\r\n".encode("ascii"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, separator, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if not separator or len(status_line) < 2 or not status_line[1].isdigit():
        raise OSError(0, "the engine's answer is not HTTP")
    return int(status_line[1]), body


def _engine_message(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()
    return str(answer.get("message", "")) if isinstance(answer, dict) else ""

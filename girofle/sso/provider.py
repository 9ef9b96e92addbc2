"""Talking to an OpenID Connect provider: discovery, and client registration (RFC 7591)
and its management (RFC 7592), over HTTP with the standard library."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from girofle.errors import SsoError

TIMEOUT = 10.0
DISCOVERY = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class Answer:
    """A provider's answer: its status, JSON body (empty when none) and Date header."""

    status: int
    body: dict[str, Any]
    date: str | None


def call(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: dict[str, Any] | None = None,
    ca_file: Path | None = None,
    accept: tuple[int, ...] = (),
) -> Answer:
    """One request; a refusal (a status >= 400 not in ``accept``) or no answer is an
    SsoError in one line, the provider's own error_description quoted when it gives one."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as response:
            return Answer(response.status, _json(response.read()), response.headers["Date"])
    except urllib.error.HTTPError as err:
        answer = Answer(err.code, _json(err.read()), err.headers["Date"])
        if err.code in accept:
            return answer
        said = answer.body.get("error_description") or answer.body.get("error") or err.reason
        raise SsoError(
            f"the identity provider refused {method} {url} ({err.code}: {said})"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise SsoError(f"the identity provider at {url} does not answer: {reason}") from None


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def discovery_url(issuer: str) -> str:
    """Where an issuer's discovery document is (OpenID Connect Discovery 1.0, section 4)."""
    return issuer.rstrip("/") + DISCOVERY


def issuer_mismatch(document: dict[str, Any], issuer: str) -> str | None:
    """What is wrong when a discovery document is not the issuer's own; None when it is."""
    if document.get("issuer") == issuer:
        return None
    return (
        f"the discovery document at {discovery_url(issuer)} names issuer "
        f"{document.get('issuer')!r}, not {issuer!r}"
    )


def discover(issuer: str, ca_file: Path | None) -> dict[str, Any]:
    """The provider's discovery document, checked to be the issuer's own."""
    document = call("GET", discovery_url(issuer), ca_file=ca_file).body
    mismatch = issuer_mismatch(document, issuer)
    if mismatch is not None:
        raise SsoError(mismatch)
    return document


def clock_skew(answer: Answer, now: float) -> float | None:
    """How far the provider's clock (its Date header) is from ``now``, in seconds."""
    if answer.date is None:
        return None
    try:
        return abs(parsedate_to_datetime(answer.date).timestamp() - now)
    except (TypeError, ValueError):
        return None

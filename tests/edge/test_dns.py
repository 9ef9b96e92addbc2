"""DNS publication against a real BIND 9 that takes TSIG-signed RFC 2136 updates."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import pytest
from python_on_whales import DockerClient

from tests.fleet import Fleet, instance_name
from tests.helpers import SESSION, TEST_LABEL, published_port, running, wait_until
from tests.images.build import BuiltImages

pytestmark = pytest.mark.engine

KEY_NAME = "girofle-test"


@dataclass
class Bind:
    port: int
    key_file: Path  # what Girofle reads: the secret alone, mode 0600

    def addresses(self, hostname: str) -> set[str]:
        query = dns.message.make_query(hostname, dns.rdatatype.A)
        answer = dns.query.tcp(query, "127.0.0.1", port=self.port, timeout=5)
        return {r.address for rrset in answer.answer for r in rrset}

    def config_args(self) -> list[str]:
        pairs = {
            "server": "127.0.0.1",
            "port": str(self.port),
            "zone": "kytes.io",
            "key_name": KEY_NAME,
            "key_algorithm": "hmac-sha256",
            "key_file": str(self.key_file),
        }
        return [arg for key, value in pairs.items() for arg in ("-c", f"dns.{key}={value}")]


def answers(port: int) -> bool:
    """Whether named serves the zone yet (docker-proxy accepts, then drops, connections to a
    port nothing listens on inside the container: EOF rather than a refusal)."""
    query = dns.message.make_query("kytes.io", dns.rdatatype.SOA)
    try:
        return bool(dns.query.tcp(query, "127.0.0.1", port=port, timeout=2).answer)
    except (EOFError, dns.exception.DNSException):
        return False


@pytest.fixture
def bind(engine: DockerClient, images: BuiltImages, tmp_path: Path) -> Iterator[Bind]:
    """Debian's BIND 9, primary for kytes.io, updates allowed with one TSIG key."""
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    named_key = tmp_path / "girofle.key"
    named_key.write_text(f'key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};\n')
    named_key.chmod(0o644)
    key_file = tmp_path / "tsig-secret"
    key_file.write_text(secret + "\n")
    key_file.chmod(0o600)
    with running(
        engine,
        images.bind9,
        {TEST_LABEL: SESSION},
        publish=[("127.0.0.1:", "53/tcp")],
        volumes=[(str(named_key), "/etc/bind/tsig/girofle.key", "ro")],
    ) as server:
        port = published_port(server, 53)
        assert wait_until(lambda: answers(port), timeout=30), engine.container.logs(server)
        yield Bind(port, key_file)


def test_records_follow_new_stack_projects_and_rm(
    make_fleet: Callable[[], Fleet], bind: Bind
) -> None:
    fleet = make_fleet()
    name = instance_name("d")
    fleet.init("--first-instance", name, "-c", "backups.scheduler=none", *bind.config_args())
    host = f"gitlab.scm.{name}.kytes.io"
    assert bind.addresses(host) == {"127.0.0.1"}
    doctor = json.loads(fleet.run("doctor", "--json", check=False).stdout)
    assert {c["check"]: c["ok"] for c in doctor}[f"dns {host}"] is True

    fleet.run("project", "add", name, "wiki")
    assert bind.addresses(f"wiki.scm.{name}.kytes.io") == {"127.0.0.1"}
    assert fleet.edge(f"wiki.scm.{name}.kytes.io").status == 200  # router and certificate too
    fleet.run("project", "rm", name, "wiki")
    assert bind.addresses(f"wiki.scm.{name}.kytes.io") == set()
    assert fleet.edge(f"wiki.scm.{name}.kytes.io").status == 0  # its certificate is gone too
    assert bind.addresses(host) == {"127.0.0.1"}

    fleet.run("rm", name, "--no-backup")
    assert bind.addresses(host) == set()


def test_a_wrong_tsig_key_is_a_clear_error_and_the_instance_keeps_running(
    make_fleet: Callable[[], Fleet], bind: Bind
) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance", "-c", "backups.scheduler=none", *bind.config_args())
    right = bind.key_file.read_text()
    bind.key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    name = instance_name("w")
    proc = fleet.run("new-stack", name, check=False)
    assert proc.returncode == 7
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"girofle: {name} is running, but the DNS server 127.0.0.1:")
    assert f"refused the TSIG key {KEY_NAME} (BadSignature)" in last  # BIND's BADSIG
    assert [(r["name"], r["state"]) for r in fleet.ls()] == [(name, "healthy")]
    assert bind.addresses(f"gitlab.scm.{name}.kytes.io") == set()
    doctor = json.loads(fleet.run("doctor", "--json", check=False).stdout)
    assert {c["check"]: c["ok"] for c in doctor}[f"dns gitlab.scm.{name}.kytes.io"] is False

    bind.key_file.write_text(right)  # the operator fixes the key; a project change publishes
    fleet.run("project", "add", name, "docs")
    assert bind.addresses(f"gitlab.scm.{name}.kytes.io") == {"127.0.0.1"}
    assert bind.addresses(f"docs.scm.{name}.kytes.io") == {"127.0.0.1"}

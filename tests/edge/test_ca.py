"""Girofle's CA: certificates that OpenSSL verifies for each hostname, and for no other."""

from __future__ import annotations

import subprocess
from pathlib import Path

from girofle.edge import ca
from girofle.home import Home

HOSTS = ["web.scm.alpha.kytes.io", "api.scm.alpha.kytes.io"]


def openssl_verifies(ca_cert: Path, cert: Path, hostname: str) -> bool:
    proc = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca_cert), "-verify_hostname", hostname, str(cert)],
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0


def test_an_instance_certificate_verifies_for_each_hostname_and_no_other(tmp_path: Path) -> None:
    home = Home(tmp_path)
    authority = ca.ensure_ca(home, "g1234")
    leaf = ca.CertificatePaths(tmp_path / "alpha.crt", tmp_path / "alpha.key")
    ca.issue(authority, HOSTS, leaf)
    for host in HOSTS:
        assert openssl_verifies(authority.cert, leaf.cert, host)
    assert not openssl_verifies(authority.cert, leaf.cert, "web.scm.beta.kytes.io")
    ca.ensure_ca(Home(tmp_path / "elsewhere"), "g9999")
    other = ca.ca_paths(Home(tmp_path / "elsewhere"))
    assert not openssl_verifies(other.cert, leaf.cert, HOSTS[0])  # another home's CA: no


def test_keys_are_private_and_the_ca_is_made_once(tmp_path: Path) -> None:
    home = Home(tmp_path)
    first = ca.ensure_ca(home, "g1234")
    pem = first.cert.read_bytes()
    assert ca.ensure_ca(home, "g1234").cert.read_bytes() == pem
    assert first.key.stat().st_mode & 0o777 == 0o600
    assert first.key.parent.stat().st_mode & 0o777 == 0o700


def test_a_certificate_is_issued_again_only_when_its_names_change(tmp_path: Path) -> None:
    authority = ca.ensure_ca(Home(tmp_path), "g1234")
    leaf = ca.CertificatePaths(tmp_path / "alpha.crt", tmp_path / "alpha.key")
    assert not ca.covers(leaf.cert, HOSTS)
    ca.issue(authority, HOSTS, leaf)
    assert ca.covers(leaf.cert, list(reversed(HOSTS)))
    assert not ca.covers(leaf.cert, [*HOSTS, "docs.scm.alpha.kytes.io"])

"""Girofle's local certificate authority, for `tls.mode: selfsigned`.

One CA per home (an EC P-256 key, 0600, in <home>/secrets/home/ca/) issues each instance a
certificate whose subjectAltName lists all its hostnames. Clients trust the CA once
(`girofle ca export`) instead of one certificate per instance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from girofle.home import Home, atomic_write, write_private

CA_YEARS = 10
# Browsers refuse server certificates valid for more than 398 days.
LEAF_DAYS = 397
# A certificate is issued again when it would expire within this many days.
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class CertificatePaths:
    cert: Path
    key: Path


def ca_paths(home: Home) -> CertificatePaths:
    directory = home.home_secrets / "ca"
    return CertificatePaths(directory / "ca.crt", directory / "ca.key")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; a server certificate signs TLS handshakes."""
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def ensure_ca(home: Home, home_id: str) -> CertificatePaths:
    """The home's CA, created on first use."""
    paths = ca_paths(home)
    if paths.cert.is_file() and paths.key.is_file():
        return paths
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Girofle"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Girofle CA {home_id}"),
        ]
    )
    start = _now() - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(signs_certificates=True),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(paths.key, _pem_key(key))
    atomic_write(paths.cert, cert.public_bytes(serialization.Encoding.PEM))
    return paths


def _load_ca(paths: CertificatePaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def covers(cert_file: Path, hostnames: list[str]) -> bool:
    """Whether a certificate exists, names exactly ``hostnames`` and is not due for renewal."""
    if not cert_file.is_file():
        return False
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    fresh = cert.not_valid_after_utc - _now() > dt.timedelta(days=RENEW_BEFORE_DAYS)
    return fresh and sorted(names.get_values_for_type(x509.DNSName)) == sorted(hostnames)


def issue(ca: CertificatePaths, hostnames: list[str], target: CertificatePaths) -> None:
    """A server certificate for ``hostnames``, signed by the CA, written to ``target``."""
    ca_cert, ca_key = _load_ca(ca)
    key = ec.generate_private_key(ec.SECP256R1())
    start = _now() - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=LEAF_DAYS))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(signs_certificates=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # The key first: a certificate on disk always has its key beside it.
    write_private(target.key, _pem_key(key))
    atomic_write(target.cert, cert.public_bytes(serialization.Encoding.PEM))

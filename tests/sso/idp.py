"""Test identity providers and a cookie-keeping HTTP client that drives logins with curl."""

from __future__ import annotations

import datetime as dt
import html.parser
import ipaddress
import json
import secrets
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from python_on_whales import Container, DockerClient

from tests.fleet import Fleet, free_port
from tests.helpers import SESSION, TEST_LABEL, running, wait_until
from tests.images.build import BuiltImages


def instance_sites(fleet: Fleet, name: str) -> tuple[list[str], list[str]]:
    """The instance's base URLs through the edge, as `girofle ls` gives them, and the
    curl --resolve entries that send their hostnames to the edge on 127.0.0.1."""
    (row,) = [r for r in json.loads(fleet.run("ls", "--json").stdout) if r["name"] == name]
    bases = [url.rstrip("/") for url in row["urls"]]
    hosts = [base.split("//")[1].split(":")[0] for base in bases]
    return bases, [f"{host}:{fleet.https_port}:127.0.0.1" for host in hosts]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def tls_material(directory: Path, address: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``address`` signed by it: (ca, cert, key) files."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("girofle test IdP CA"))
        .issuer_name(_name("girofle test IdP CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(address))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "idp-ca.crt", directory / "idp.crt", directory / "idp.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths[2].chmod(0o644)  # read by the provider's unprivileged user in its container
    return paths


def bridge_gateway(engine: DockerClient) -> str:
    """The engine's default bridge address: this host's, reachable from every container
    (through the instance's own network) and from the host itself."""
    gateway = engine.network.inspect("bridge").ipam.config[0]["Gateway"]
    return str(gateway)


@dataclass(frozen=True)
class OidcProvider:
    issuer: str
    token_file: Path
    ca_file: Path
    container: Container


def oidc_provider(
    engine: DockerClient, images: BuiltImages, directory: Path
) -> Iterator[OidcProvider]:
    """npm's oidc-provider over HTTPS on the bridge's address, with its CA; registration
    behind an initial access token kept in a 0600 file."""
    address, port = bridge_gateway(engine), free_port()
    issuer = f"https://{address}:{port}"
    ca, cert, key = tls_material(directory, address)
    token = secrets.token_urlsafe(24)
    token_file = directory / "initial-access-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    with running(
        engine,
        images.oidc_provider,
        {TEST_LABEL: SESSION},
        publish=[(f"{address}:{port}", 3000)],
        volumes=[(str(cert), "/tls/cert.pem", "ro"), (str(key), "/tls/key.pem", "ro")],
        envs={
            "OIDC_ISSUER": issuer,
            "OIDC_INITIAL_ACCESS_TOKEN": token,
            "OIDC_TLS_CERT": "/tls/cert.pem",
            "OIDC_TLS_KEY": "/tls/key.pem",
        },
    ) as container:
        browser = Browser(directory / "probe-jar", [ca])
        discovery = f"{issuer}/.well-known/openid-configuration"
        assert wait_until(lambda: browser.get(discovery).status == 200, 30), engine.container.logs(
            container
        )
        yield OidcProvider(issuer, token_file, ca, container)


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    body: str
    url: str

    @property
    def location(self) -> str:
        return urllib.parse.urljoin(self.url, self.headers.get("location", ""))


class _Forms(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((found.get("action", ""), found.get("method", "get"), {}))
        elif tag == "input" and self.forms and "name" in found:
            self.forms[-1][2][found["name"]] = found.get("value", "")


def forms(page: Page) -> list[tuple[str, str, dict[str, str]]]:
    """The forms of a page: (absolute action, method, the inputs' names and values)."""
    parser = _Forms()
    parser.feed(page.body)
    return [(urllib.parse.urljoin(page.url, a), m.lower(), f) for a, m, f in parser.forms]


@dataclass
class Browser:
    """What a browser does for a login, with curl: cookies kept, redirects followed by the
    caller, the CAs given trusted, and hostnames resolved to given addresses."""

    jar: Path
    cas: list[Path]
    resolve: list[str] = field(default_factory=list)

    def request(
        self,
        method: str,
        url: str,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Page:
        bundle = self.jar.with_suffix(".cas")
        bundle.write_bytes(b"".join(p.read_bytes() for p in self.cas))
        trust = ["--cacert", str(bundle)] if self.cas else []
        received = self.jar.with_suffix(".headers")
        command = ["curl", "-sS", "-o", "-", "-D", str(received), "-c", str(self.jar)]
        command += ["-b", str(self.jar), *trust, "-X", method, "-m", "60"]
        for item in self.resolve:
            command += ["--resolve", item]
        for key, value in (data or {}).items():
            command += ["--data-urlencode", f"{key}={value}"]
        for key, value in (headers or {}).items():
            command += ["-H", f"{key}: {value}"]
        proc = subprocess.run([*command, url], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return Page(0, {}, proc.stderr, url)
        lines = received.read_text().splitlines()
        status = int(lines[0].split()[1])
        parsed = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            parsed[key.strip().lower()] = value.strip()
        return Page(status, parsed, proc.stdout, url)

    def get(self, url: str, headers: dict[str, str] | None = None) -> Page:
        return self.request("GET", url, headers=headers)

    def follow(self, page: Page, limit: int = 10) -> Page:
        """Follow redirects from ``page`` (GET), as a browser does."""
        for _ in range(limit):
            if page.status not in (301, 302, 303, 307, 308):
                return page
            page = self.get(page.location)
        raise AssertionError(f"more than {limit} redirects from {page.url}")

    def follow_while(self, page: Page, prefix: str, limit: int = 10) -> Page:
        """Follow redirects while they stay under ``prefix`` (one site's own hops)."""
        for _ in range(limit):
            if page.status not in (301, 302, 303, 307, 308) or not page.location.startswith(prefix):
                return page
            page = self.get(page.location)
        raise AssertionError(f"more than {limit} redirects from {page.url}")

    def submit(self, page: Page, to: str = "", **fields: str) -> Page:
        """Submit the page's first form whose action ends with ``to`` and whose inputs
        include ``fields``' names."""
        for action, method, inputs in forms(page):
            if action.split("?")[0].endswith(to) and set(fields) <= set(inputs):
                return self.request(method.upper(), action, {**inputs, **fields})
        raise AssertionError(f"no form with {sorted(fields)} on {page.url}: {page.body[:300]}")


def signing_certificate(directory: Path) -> tuple[Path, Path, str]:
    """An RSA key and a self-signed certificate for a SAML IdP: (cert, key, the
    certificate's SHA-1 fingerprint as GitLab's idp_cert_fingerprint writes it)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    now = dt.datetime.now(dt.UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("girofle test SAML IdP"))
        .issuer_name(_name("girofle test SAML IdP"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "saml-idp.crt", directory / "saml-idp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o644)  # read by the IdP's unprivileged user in its container
    digest = cert.fingerprint(hashes.SHA1()).hex().upper()  # GitLab's default algorithm
    return cert_file, key_file, ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@dataclass(frozen=True)
class SamlIdp:
    base: str
    fingerprint: str
    container: Container

    @property
    def sso_url(self) -> str:
        return f"{self.base}/sso"


def saml_idp(engine: DockerClient, images: BuiltImages, directory: Path) -> Iterator[SamlIdp]:
    """samlify as a SAML IdP on the bridge's address, signing with a fresh certificate."""
    address, port = bridge_gateway(engine), free_port()
    base = f"http://{address}:{port}"
    cert, key, fingerprint = signing_certificate(directory)
    with running(
        engine,
        images.saml_idp,
        {TEST_LABEL: SESSION},
        publish=[(f"{address}:{port}", 3000)],
        volumes=[(str(cert), "/saml/cert.pem", "ro"), (str(key), "/saml/key.pem", "ro")],
        envs={"SAML_BASE_URL": base, "SAML_CERT": "/saml/cert.pem", "SAML_KEY": "/saml/key.pem"},
    ) as container:
        probe = Browser(directory / "saml-probe-jar", [])
        assert wait_until(lambda: probe.get(f"{base}/sso").status == 400, 30), (
            engine.container.logs(container)
        )
        yield SamlIdp(base, fingerprint, container)

"""tls.mode acme against a real ACME CA: Pebble, Let's Encrypt's test server, from Debian.

Pebble joins the home's proxy network as `pebble`; its DNS (pebble-challtestsrv) answers
every name with Traefik's address there, so its HTTP-01 validation reaches Traefik's web
entrypoint exactly as Let's Encrypt's would reach a public one.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from girofle.edge import ca
from girofle.home import Home
from tests.fleet import Fleet, instance_name
from tests.helpers import SESSION, TEST_LABEL, published_port, running, wait_until
from tests.images.build import BuiltImages

pytestmark = pytest.mark.engine


def pebble_files(directory: Path) -> Path:
    """Pebble's HTTPS certificate (for the name `pebble`), its config; return the CA file."""
    authority = ca.ensure_ca(Home(directory / "pebble-ca"), "pebble")
    server = ca.CertificatePaths(directory / "cert.pem", directory / "key.pem")
    ca.issue(authority, ["pebble"], server)
    config = {
        "pebble": {
            "listenAddress": "0.0.0.0:14000",
            "managementListenAddress": "0.0.0.0:15000",
            "certificate": "/etc/pebble/cert.pem",
            "privateKey": "/etc/pebble/key.pem",
            "httpPort": 80,  # Traefik's web entrypoint, inside the proxy network
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (directory / "config.json").write_text(json.dumps(config))
    return authority.cert


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=30)


def test_acme_mode_gets_each_hostname_a_certificate_from_the_acme_ca(
    make_fleet: Callable[[], Fleet],
    engine: DockerClient,
    images: BuiltImages,
    tmp_path: Path,
) -> None:
    pebble_dir = tmp_path / "pebble"
    pebble_dir.mkdir()
    pebble_ca = pebble_files(pebble_dir)
    fleet = make_fleet()
    fleet.init(
        "--no-first-instance",
        "-c", "tls.mode=acme",
        "-c", "tls.acme.email=ops@kytes.io",
        "-c", "tls.acme.ca_server=https://pebble:14000/dir",
        "-c", f"tls.acme.ca_certificates={pebble_ca}",
        "-c", "traefik.dashboard=false",
        "-c", "backups.scheduler=none",
    )  # fmt: skip
    network = f"girofle-{fleet.home_id}-proxy"
    traefik = engine.container.inspect(f"girofle-traefik-{fleet.home_id}")
    traefik_ip = traefik.network_settings.networks[network].ip_address
    with running(
        engine,
        images.pebble,
        {TEST_LABEL: SESSION},
        networks=[network],
        network_aliases=["pebble"],
        publish=[("127.0.0.1:", 15000)],
        envs={
            "CHALLENGE_TARGET": traefik_ip,
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
        },
        volumes=[(str(pebble_dir), "/etc/pebble", "ro")],
    ) as pebble:
        management = f"https://127.0.0.1:{published_port(pebble, 15000)}"
        assert wait_until(lambda: curl("-k", f"{management}/roots/0").returncode == 0, 30)
        name = instance_name("a")
        fleet.run("new-stack", name, "--project", "web", "--project", "docs")
        root = tmp_path / "pebble-root.pem"
        root.write_text(curl("-k", f"{management}/roots/0").stdout)
        for project in ("web", "docs"):
            host = f"{project}.scm.{name}.kytes.io"
            url = f"https://{host}:{fleet.https_port}/help"
            resolve = f"{host}:{fleet.https_port}:127.0.0.1"

            def trusted(url: str = url, resolve: str = resolve) -> bool:
                proc = curl("-o", "/dev/null", "-w", "%{http_code}", "--resolve", resolve,
                            "--cacert", str(root), url)  # fmt: skip
                return proc.stdout == "200"

            # Traefik asks Pebble when the router appears; Pebble validates over HTTP-01.
            # Only Pebble's root verifies what Traefik then serves: the certificate is
            # Pebble's, for this hostname (curl checks the name too).
            assert wait_until(trusted, timeout=60, interval=1), engine.container.logs(traefik)
        logs = engine.container.logs(traefik)
        assert [line for line in logs.splitlines() if " ERR " in line] == []
        acme_store = fleet.root / "stacks" / "_edge" / "acme" / "acme.json"
        assert acme_store.stat().st_mode & 0o777 == 0o600

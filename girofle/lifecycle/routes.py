"""Waiting until Traefik routes an instance's hostnames (it picks changes up asynchronously)."""

from __future__ import annotations

import http.client
import socket
import ssl
import time

from girofle.config import GirofleConfig
from girofle.home import Home
from girofle.inventory import Instance
from girofle.lifecycle.app import App
from girofle.render import model

# What Traefik itself answers for a hostname it has no router for.
TRAEFIK_NOT_FOUND = b"404 page not found\n"
ROUTE_TIMEOUT = 30.0


class EdgeConnection(http.client.HTTPSConnection):
    """HTTPS to Traefik's address, with SNI and the Host header set to a hostname."""

    def __init__(self, address: str, port: int, host: str, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=5, context=context)
        self.address = address
        self.tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.host)


def edge_context(config: GirofleConfig, home: Home) -> ssl.SSLContext:
    """What a client that trusts Girofle's CA (selfsigned) or the system's (acme) checks."""
    if config.tls.mode == "selfsigned":
        from girofle.edge.ca import ca_paths  # cryptography: only when TLS is Girofle's

        return ssl.create_default_context(cafile=str(ca_paths(home).cert))
    # ACME: the certificate may still be on its way; routing is what is checked here.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def routed(config: GirofleConfig, home: Home, host: str) -> bool:
    """Whether a request for ``host`` reaches a backend that answers: not Traefik's own 404,
    and not a 5xx (Traefik's 502 for a backend it cannot reach, GitLab's 502 while puma
    restarts)."""
    address = str(config.traefik.address)
    connection: http.client.HTTPConnection
    if config.tls.mode == "none":
        connection = http.client.HTTPConnection(address, config.traefik.http_port, timeout=5)
        headers = {"Host": host}
    else:
        context = edge_context(config, home)
        connection = EdgeConnection(address, config.traefik.https_port, host, context)
        headers = {}
    try:
        connection.request("GET", "/help", headers=headers)
        response = connection.getresponse()
        body = response.read(64)
    except OSError:  # ssl errors too: a certificate Traefik has not loaded yet
        return False
    finally:
        connection.close()
    if response.status >= 500:
        return False
    return not (response.status == 404 and body == TRAEFIK_NOT_FOUND)


def wait_routed(app: App, instance: Instance, timeout: float = ROUTE_TIMEOUT) -> bool:
    """Wait until every hostname of ``instance`` answers through Traefik; say so if not."""
    config = app.config
    if config.routing != "traefik":
        return True
    hosts = model.instance_hostnames(config, instance)
    deadline = time.monotonic() + timeout
    pending = list(hosts)
    while pending:
        pending = [h for h in pending if not routed(config, app.home, h)]
        if not pending:
            break
        if time.monotonic() >= deadline:
            app.progress(
                f"{instance.name}: healthy, but Traefik does not route "
                f"{', '.join(pending)} after {timeout:.0f} s"
            )
            return False
        time.sleep(0.2)  # Traefik applies provider changes after a throttle (2 s default)
    return True

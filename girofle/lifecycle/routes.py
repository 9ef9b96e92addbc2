"""Waiting until Traefik routes an instance's hostnames (it picks changes up asynchronously)."""

from __future__ import annotations

import http.client
import time

from girofle.inventory import Instance
from girofle.lifecycle.app import App
from girofle.render import model

# What Traefik itself answers for a hostname it has no router for.
TRAEFIK_NOT_FOUND = b"404 page not found\n"
ROUTE_TIMEOUT = 30.0


def routed(address: str, port: int, host: str) -> bool:
    """Whether a request for ``host`` reaches a backend rather than Traefik's own 404."""
    connection = http.client.HTTPConnection(address, port, timeout=5)
    try:
        connection.request("GET", "/help", headers={"Host": host})
        response = connection.getresponse()
        body = response.read(64)
    except OSError:
        return False
    finally:
        connection.close()
    return not (response.status == 404 and body == TRAEFIK_NOT_FOUND)


def wait_routed(app: App, instance: Instance, timeout: float = ROUTE_TIMEOUT) -> bool:
    """Wait until every hostname of ``instance`` answers through Traefik; say so if not."""
    config = app.config
    if config.routing != "traefik":
        return True
    hosts = [model.hostname(config, instance.name, p) for p in instance.projects]
    address, port = str(config.traefik.address), config.traefik.http_port
    deadline = time.monotonic() + timeout
    pending = list(hosts)
    while pending:
        pending = [h for h in pending if not routed(address, port, h)]
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

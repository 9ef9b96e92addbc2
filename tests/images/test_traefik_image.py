"""The Traefik image is the real Traefik: it routes by hostname to containers by label."""

from __future__ import annotations

import json

import pytest
from python_on_whales import DockerClient

from tests.helpers import (
    SESSION,
    TEST_LABEL,
    http,
    published_port,
    running,
    unique,
    wait_health,
    wait_until,
)
from tests.images.build import BuiltImages

pytestmark = pytest.mark.engine


def test_traefik_routes_a_hostname_to_the_standin(
    engine: DockerClient, images: BuiltImages
) -> None:
    labels = {TEST_LABEL: SESSION}
    network = engine.network.create(unique("gtest-proxy"), labels=labels)
    host = "proj.scm.alpha.kytes.test"
    try:
        app_labels = {
            **labels,
            "traefik.enable": "true",
            "traefik.http.routers.alpha.rule": f"Host(`{host}`)",
            "traefik.http.routers.alpha.entrypoints": "web",
            "traefik.http.services.alpha.loadbalancer.server.port": "80",
        }
        with (
            running(
                engine,
                images.standin,
                app_labels,
                networks=[network],
                health_interval=1,
                envs={"GITLAB_OMNIBUS_CONFIG": f"external_url 'http://{host}'"},
            ) as app,
            running(
                engine,
                images.traefik,
                labels,
                networks=[network],
                volumes=[("/var/run/docker.sock", "/var/run/docker.sock", "ro")],
                publish=[("127.0.0.1:", 80), ("127.0.0.1:", 8080)],
                command=[
                    "--entrypoints.web.address=:80",
                    "--api.insecure=true",
                    "--providers.docker.exposedbydefault=false",
                    f"--providers.docker.network={network.name}",
                ],
            ) as traefik,
        ):
            assert wait_health(engine, app, "healthy") == "healthy"
            api = f"http://127.0.0.1:{published_port(traefik, 8080)}/api/http/routers"
            # Traefik adds the route once it sees the container healthy: wait for the router.
            assert wait_until(lambda: "alpha@docker" in http(api).body, timeout=30)
            routers = json.loads(http(api).body)
            assert any(r["rule"] == f"Host(`{host}`)" for r in routers)
            web = f"http://127.0.0.1:{published_port(traefik, 80)}/help"
            routed = http(web, {"Host": host})
            assert routed.status == 200 and f"http://{host}" in routed.body
            assert http(web, {"Host": "other.scm.alpha.kytes.test"}).status == 404
            version = engine.container.logs(traefik)
            assert "level=error" not in version.lower()
    finally:
        network.remove()

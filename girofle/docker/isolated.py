"""Throwaway containers that nobody can reach: their own internal network (no route out,
none in), no published port, no Traefik label. Restore drills run GitLab in one."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from girofle.docker.gateway import Engine
from girofle.errors import DockerError

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def duration(text: str) -> dt.timedelta:
    """'30s', '10m', '250ms' (the forms girofle.yml's healthcheck takes) as a timedelta."""
    unit = "ms" if text.endswith("ms") else text[-1]
    return dt.timedelta(seconds=float(text[: -len(unit)]) * UNITS[unit])


def nanoseconds(text: str) -> int:
    """A duration as the engine's API takes it."""
    return int(duration(text) / dt.timedelta(microseconds=1)) * 1000


@dataclass(frozen=True)
class IsolatedSpec:
    """What to run: an image, its environment, labels and healthcheck."""

    name: str
    image: str
    labels: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    health_cmd: str | None = None
    health_interval: str = "30s"
    health_timeout: str = "30s"
    health_retries: int = 5
    health_start_period: str = "10m"
    shm_size: str | None = None


@contextlib.contextmanager
def isolated(engine: Engine, spec: IsolatedSpec) -> Iterator[str]:
    """Run ``spec`` on a new internal network; remove the container, its anonymous volumes
    (GitLab's data, config and logs) and the network afterwards, whatever happened."""
    try:
        engine.create_internal_network(spec.name, spec.labels)
        engine.run_detached(
            spec.name,
            spec.image,
            hostname="drill",
            network=spec.name,
            labels=spec.labels,
            env=spec.env,
            healthcheck=None
            if spec.health_cmd is None
            else {
                "test": ["CMD-SHELL", spec.health_cmd],
                "interval": nanoseconds(spec.health_interval),
                "timeout": nanoseconds(spec.health_timeout),
                "retries": spec.health_retries,
                "start_period": nanoseconds(spec.health_start_period),
            },
            shm_size=spec.shm_size,
        )
    except BaseException:
        remove_isolated(engine, spec.name)
        raise
    try:
        yield spec.name
    finally:
        remove_isolated(engine, spec.name)


def remove_isolated(engine: Engine, name: str) -> None:
    """The container (with its anonymous volumes) and the network named ``name``, gone."""
    with contextlib.suppress(DockerError):
        engine.remove_container(name)
    with contextlib.suppress(DockerError):
        engine.remove_network(name)

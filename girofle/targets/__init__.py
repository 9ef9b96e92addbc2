"""Where instances run: the one seam between what Girofle does and the engine that runs it.

A target knows how an instance (and the edge) is rendered, applied, removed, stopped and
restarted, which container runs it and through which engine a command reaches it, how it is
waited for, and how the fleet is observed. `girofle.yml`'s ``target`` chooses one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from girofle.config import GirofleConfig
    from girofle.docker.gateway import Engine
    from girofle.docker.ps import ContainerRow
    from girofle.home import Home
    from girofle.render.model import InstanceSpec

OnHealthChange = Callable[[str, float], None]


def _quiet(status: str, elapsed: float) -> None:
    """Default health-change sink: say nothing."""


class Target(Protocol):
    """What every target offers; instances are named, never addressed by container."""

    kind: str
    stack_file: str

    def render_instance(self, spec: InstanceSpec) -> dict[str, bytes]:
        """The files of an instance's stack directory, by name."""
        ...

    def render_edge(self, config: GirofleConfig) -> dict[str, bytes]:
        """The files of the edge's stack directory, by name."""
        ...

    def container(self, name: str) -> str:
        """What runs instance ``name``'s GitLab, by name: its container, or its service."""
        ...

    def exec(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Run ``argv`` in instance ``name``'s GitLab container; its stdout."""
        ...

    def place(
        self, wanted: str | None, placed: Sequence[str | None]
    ) -> tuple[str, IPv4Address] | None:
        """The node a new instance goes to and the address it publishes on (``wanted``, or
        the target's choice given the nodes of the instances already ``placed``); None
        where there are no nodes."""
        ...

    def create(self, name: str) -> None:
        """Put the instance's containers and network on the engine, not started."""
        ...

    def apply(self, name: str) -> None:
        """Bring the instance to its rendered stack (creating or recreating what changed)."""
        ...

    def start_created(self, name: str) -> None:
        """Start what `create` just made from the stack as rendered (a first boot)."""
        ...

    def remove(self, name: str) -> None:
        """Remove the instance's containers and network; its files and data stay."""
        ...

    def purge_node_data(self, name: str) -> None:
        """Delete the instance's data where it lives, when that is not this host's disk."""
        ...

    def stop(self, name: str) -> None:
        """Stop the instance's containers, giving GitLab its grace to stop its services."""
        ...

    def restart(self, name: str) -> bool:
        """Restart the instance's GitLab container; False when it has none to restart."""
        ...

    def wait_healthy(
        self,
        name: str,
        timeout: float,
        on_change: OnHealthChange = _quiet,
        stop_on_crash: bool = False,
    ) -> None:
        """Wait until the engine reports instance ``name`` healthy."""
        ...

    def observe(self) -> dict[str, ContainerRow]:
        """The fleet as the engine sees it, by instance name, in one query."""
        ...

    def apply_edge(self) -> None:
        """Bring the edge (Traefik) to its rendered stack and wait until it is healthy."""
        ...

    def stop_edge(self) -> None:
        """Stop the edge's containers, if it has any."""
        ...

    def remove_edge(self) -> None:
        """Remove the edge's containers and network; its files stay."""
        ...


class EngineBound:
    """What every target is built with: the home's settings and home, the engine (made on
    first use), and the progress sink."""

    def __init__(
        self,
        config: GirofleConfig,
        home: Home,
        engine: Callable[[], Engine],
        progress: Callable[[str], None],
    ) -> None:
        self.config = config
        self.home = home
        self._engine = engine
        self.progress = progress

    @cached_property
    def engine(self) -> Engine:
        return self._engine()


def make_target(
    config: GirofleConfig,
    home: Home,
    engine: Callable[[], Engine],
    progress: Callable[[str], None],
) -> Target:
    """The target ``config`` names; ``engine`` is called once an engine is needed (`ls`
    needs none)."""
    if config.target == "swarm":
        from girofle.targets.on_node import SwarmNodeTarget, on_node
        from girofle.targets.swarm import SwarmTarget

        kind = SwarmNodeTarget if on_node() else SwarmTarget
        return kind(config, home, engine, progress)
    from girofle.targets.compose import ComposeTarget

    return ComposeTarget(config, home, engine, progress)


def compose_only(config: GirofleConfig, what: str) -> None:
    """Refuse, in one line and before anything changes, what the Swarm target cannot do yet."""
    if config.target == "swarm":
        from girofle.errors import UserError

        raise UserError(f"{what} is not available with target: swarm yet")

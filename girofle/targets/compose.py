"""The Compose target: each instance a Compose project on this host's engine."""

from __future__ import annotations

import re
from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING

from girofle.config import GirofleConfig
from girofle.docker.ps import ContainerRow, gitlab_containers
from girofle.errors import DockerError, UserError
from girofle.render import compose, model
from girofle.render.model import InstanceSpec
from girofle.targets import EngineBound, OnHealthChange, _quiet

if TYPE_CHECKING:
    from girofle.docker.gateway import ContainerInfo

EDGE_STOP_GRACE = 10  # Traefik stops in well under a second; Docker's default
EDGE_HEALTH_TIMEOUT = 120
MISSING_NETWORK = re.compile(r"network \S+ not found")


class ComposeTarget(EngineBound):
    """Instances and the edge as Compose projects (`docker compose`) on one engine."""

    kind = "compose"
    stack_file = compose.COMPOSE_FILE

    # --- rendering ----------------------------------------------------------------

    def render_instance(self, spec: InstanceSpec) -> dict[str, bytes]:
        """The files of an instance's stack directory, by name."""
        return compose.render_instance(spec)

    def render_edge(self, config: GirofleConfig) -> dict[str, bytes]:
        """The files of the edge's stack directory, by name."""
        return compose.render_edge(config)

    # --- where an instance runs -----------------------------------------------------

    def container(self, name: str) -> str:
        """The container that runs instance ``name``'s GitLab (its fixed container_name)."""
        return model.container_name(name)

    def exec(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Run ``argv`` in instance ``name``'s GitLab container; its stdout."""
        return self.engine.exec(self.container(name), list(argv), env=env, timeout=timeout)

    def place(
        self, wanted: str | None, placed: Sequence[str | None]
    ) -> tuple[str, IPv4Address] | None:
        """One host, no nodes to choose from."""
        if wanted is not None:
            raise UserError("--node applies only to target: swarm (this home's is compose)")
        return None

    # --- applying and removing ---------------------------------------------------

    def _project(self, name: str) -> str:
        return model.project_name(self.config.home_id, name)

    def create(self, name: str) -> None:
        """`docker compose create`: the containers and network, not started."""
        self.engine.compose_create(self.home.stack_dir(name), self._project(name))

    def apply(self, name: str) -> None:
        """`docker compose up`; a container whose network was removed and made anew (the
        proxy network, after `edge down` and `edge up`) cannot start again, so it is
        recreated (data is in bind mounts, and stays)."""
        stack = self.home.stack_dir(name)
        try:
            self.engine.compose_up(stack, self._project(name))
        except DockerError as err:
            if not MISSING_NETWORK.search(str(err)):
                raise
            self.progress(f"{name}: a network it was on was made anew: recreating its container")
            self.engine.compose_up(stack, self._project(name), force_recreate=True)

    def start_created(self, name: str) -> None:
        """Start the containers `compose create` just made, through the engine: what
        `compose up` would do with them, without Compose's second pass over the project
        (a third of a second). The stack has no `depends_on`: the order does not matter."""
        self.engine.start_project(self._project(name))

    def remove(self, name: str) -> None:
        """`docker compose down`, when the stack was ever rendered."""
        stack = self.home.stack_dir(name)
        if (stack / self.stack_file).exists():
            self.engine.compose_down(stack, self._project(name))

    def purge_node_data(self, name: str) -> None:
        """Its data is on this host: `rm --purge` deletes it here."""

    # --- power ------------------------------------------------------------------

    def _containers(self, name: str) -> list[ContainerInfo]:
        return self.engine.containers(
            {model.HOME_LABEL: self.config.home_id, model.INSTANCE_LABEL: name}
        )

    def stop(self, name: str) -> None:
        """Stop the instance's containers with GitLab's grace period."""
        self.engine.stop(self._containers(name), self.config.gitlab.stop_grace_period)

    def restart(self, name: str) -> bool:
        """Restart the GitLab container; False when there is none."""
        container = self.engine.container(self.container(name))
        if container is None:
            return False
        self.engine.restart(container, self.config.gitlab.stop_grace_period)
        return True

    def wait_healthy(
        self,
        name: str,
        timeout: float,
        on_change: OnHealthChange = _quiet,
        stop_on_crash: bool = False,
    ) -> None:
        """Follow the engine's health events for the GitLab container."""
        self.engine.wait_healthy(self.container(name), timeout, on_change, stop_on_crash)

    def observe(self) -> dict[str, ContainerRow]:
        """Every GitLab container of this home, by instance, from one query."""
        return gitlab_containers(self.config.home_id)

    # --- the edge ---------------------------------------------------------------

    def _edge_dir(self) -> Path:
        from girofle.edge.material import edge_dir

        return edge_dir(self.home)

    def apply_edge(self) -> None:
        """`docker compose up` of the edge, then a wait for Traefik's healthcheck."""
        self.engine.compose_up(self._edge_dir(), model.edge_project(self.config.home_id))
        self.engine.wait_healthy(
            model.traefik_container(self.config.home_id), timeout=EDGE_HEALTH_TIMEOUT
        )

    def stop_edge(self) -> None:
        """Stop Traefik, when the edge was ever rendered."""
        if (self._edge_dir() / self.stack_file).exists():
            edge = {model.HOME_LABEL: self.config.home_id, model.ROLE_LABEL: "edge"}
            self.engine.stop(self.engine.containers(edge), EDGE_STOP_GRACE)

    def remove_edge(self) -> None:
        """`docker compose down` of the edge (its proxy network with it)."""
        if (self._edge_dir() / self.stack_file).exists():
            self.engine.compose_down(self._edge_dir(), model.edge_project(self.config.home_id))

"""The Swarm target: each instance a stack on a Docker Swarm, pinned to the node that holds
its volumes; this host is a manager.

Work on an instance's node (its directories, its gitlab.rb, any command in its container)
goes through Swarm itself: a one-shot job pinned to that node, holding that node's engine
socket, running Girofle's tools image. No SSH and no agent left running; the job's output comes
back through the manager.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from functools import cached_property
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING

from docker.types import ConfigReference, Mount, SecretReference

from girofle.config import GirofleConfig
from girofle.docker.gateway import last_line
from girofle.docker.ps import ContainerRow, swarm_rows
from girofle.docker.swarm import Node, Swarm, Task
from girofle.errors import ConflictError, DockerError, UserError, error_for_exit
from girofle.home import Home
from girofle.render import model, stack
from girofle.render.model import InstancePaths, InstanceSpec
from girofle.targets import EngineBound, OnHealthChange, _quiet

if TYPE_CHECKING:
    from girofle.docker.gateway import Engine

# A node's engine socket, when it is not Docker's default (a node label Girofle reads).
SOCKET_LABEL = "io.girofle.docker-socket"
DEFAULT_SOCKET = "/var/run/docker.sock"
HOST_ROOT = "/host"  # where a layout job sees its node's filesystem
STAGED_RB = "/run/girofle/gitlab.rb"
EDGE_HEALTH_TIMEOUT = 120
EDGE_STOP_GRACE = 10
# Run by a layout job: the instance's directories, then gitlab.rb replaced atomically.
# Paths are arguments, never spliced into the script.
LAY_OUT = r"""set -e
rb="$1"; shift
for d in "$@"; do mkdir -p "$d"; done
install -m 0600 /run/girofle/gitlab.rb "$rb.new"
mv "$rb.new" "$rb"
"""


class SwarmTarget(EngineBound):
    """Instances and the edge as stacks on a swarm whose manager this host's engine is."""

    kind = "swarm"
    stack_file = stack.STACK_FILE

    def __init__(
        self,
        config: GirofleConfig,
        home: Home,
        engine: Callable[[], Engine],
        progress: Callable[[str], None],
    ) -> None:
        super().__init__(config, home, engine, progress)
        self.swarm = Swarm()

    @cached_property
    def local_node(self) -> str:
        """This host's node ID; refused unless it is a manager of a swarm."""
        node, manager = self.swarm.local_node()
        if not node or not manager:
            raise UserError(
                "target: swarm needs this host's engine to be a swarm manager "
                "(`docker swarm init`, or join as a manager)"
            )
        return node

    # --- names ------------------------------------------------------------------

    def _stack(self, name: str) -> str:
        return model.project_name(self.config.home_id, name)

    def _service(self, name: str) -> str:
        return f"{self._stack(name)}_gitlab"

    def _edge_service(self) -> str:
        return f"{model.edge_project(self.config.home_id)}_traefik"

    def container(self, name: str) -> str:
        """The service that runs instance ``name`` (its container changes with each task)."""
        return self._service(name)

    def _labels(self, name: str) -> dict[str, str]:
        return {model.HOME_LABEL: self.config.home_id, model.INSTANCE_LABEL: name}

    # --- rendering ----------------------------------------------------------------

    def render_instance(self, spec: InstanceSpec) -> dict[str, bytes]:
        """stack.yml, gitlab.rb and instance.env, with the image by its ID."""
        password = spec.root_password_file
        content = password.read_bytes() if password.exists() else b""
        image_id = self.swarm.image_id(spec.instance.image)
        return stack.instance_files(spec, image_id, content)

    def render_edge(self, config: GirofleConfig) -> dict[str, bytes]:
        """The edge's stack.yml, pinned to this manager, and the dashboard's router."""
        from girofle.edge.material import edge_dir

        image_id = self.swarm.image_id(config.traefik.image)
        socket = self._node(self.local_node).labels.get(SOCKET_LABEL, DEFAULT_SOCKET)
        return stack.edge_files(config, edge_dir(self.home), image_id, self.local_node, socket)

    # --- placement ----------------------------------------------------------------

    def nodes(self) -> list[Node]:
        """The swarm's nodes."""
        return self.swarm.nodes()

    def place(
        self, wanted: str | None, placed: Sequence[str | None]
    ) -> tuple[str, IPv4Address] | None:
        """The node a new instance goes to, by ID, and its address: ``wanted`` (an ID or
        hostname), else the ready and active node with the fewest instances (``placed``:
        the nodes of this home's instances)."""
        nodes = self.swarm.nodes()
        usable = [n for n in nodes if n.state == "ready" and n.availability == "active"]
        if wanted is not None:
            match = [n for n in nodes if wanted in (n.id, n.hostname)]
            if not match:
                known = ", ".join(sorted(n.hostname for n in nodes))
                raise UserError(f"no swarm node is named {wanted!r} (nodes: {known})")
            if len(match) > 1:
                raise UserError(f"several swarm nodes are named {wanted!r}: give its ID")
            if match[0] not in usable:
                raise ConflictError(
                    f"node {wanted} is {match[0].state} and {match[0].availability}: "
                    "it takes no new instance"
                )
            return match[0].id, IPv4Address(match[0].address)
        if not usable:
            raise ConflictError("no swarm node is ready and active")
        chosen = min(usable, key=lambda n: (placed.count(n.id), n.hostname))
        return chosen.id, IPv4Address(chosen.address)

    # --- work on a node ---------------------------------------------------------

    def hostname(self, node_id: str) -> str:
        """A node's hostname (its ID when it has left the swarm)."""
        return next((n.hostname for n in self.swarm.nodes() if n.id == node_id), node_id)

    def _node(self, node_id: str) -> Node:
        for node in self.swarm.nodes():
            if node.id == node_id:
                return node
        raise DockerError(f"node {node_id} is no longer in the swarm")

    @cached_property
    def _tools_image_id(self) -> str:
        """The tools image every job runs, by ID: looked up once per command, not per job
        (a readiness wait runs one job a second)."""
        return self.swarm.image_id(self.config.tools.image)

    def _job(
        self,
        node_id: str,
        argv: Sequence[str],
        failure: str,
        mounts: Sequence[Mount] = (),
        files: Sequence[tuple[str, bytes, bool]] = (),
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        accept: Sequence[int] = (),
        on_stderr: Callable[[str], None] | None = None,
    ) -> str:
        """Run ``argv`` in a job on the node; its stdout. ``files`` (path, content, secret)
        are handed to it as swarm configs or secrets, removed once it ends. A non-zero exit
        not in ``accept`` is a DockerError saying ``failure`` and the job's last line."""
        node = self._node(node_id)
        if node.state != "ready":
            # A job pinned to it would wait, pending, for as long as the node is away.
            raise ConflictError(f"node {node.hostname} is {node.state}: nothing can run there")
        socket = node.labels.get(SOCKET_LABEL, DEFAULT_SOCKET)
        labels = {model.HOME_LABEL: self.config.home_id}
        configs, secrets, made = [], [], []
        # Named for this job alone: another job's, ending meanwhile, removes only its own.
        prefix = f"girofle-{self.config.home_id}-job-{uuid.uuid4().hex[:12]}"
        for number, (path, data, secret) in enumerate(files):
            name, kind = f"{prefix}-{number}", "secret" if secret else "config"
            object_id = self.swarm.create_config_or_secret(kind, name, data, labels)
            made.append((kind, object_id))
            if secret:
                secrets.append(SecretReference(object_id, name, path, "0", "0", 0o400))
            else:
                configs.append(ConfigReference(object_id, name, path))
        try:
            result = self.swarm.run_job(
                node_id,
                self._tools_image_id,
                argv,
                mounts=[Mount("/var/run/docker.sock", socket, type="bind"), *mounts],
                configs=configs,
                secrets=secrets,
                env=env,
                timeout=timeout or 3600,
                labels=labels,
                on_stderr=on_stderr,
            )
        finally:
            for kind, object_id in made:
                self.swarm.remove_config_or_secret(kind, object_id)
        if result.exit_code not in (0, *accept):
            last = last_line(result.stderr, result.stdout, f"exit code {result.exit_code}")
            raise DockerError(f"{failure}: {last}", list(argv), result.exit_code, result.stderr)
        return result.stdout

    def run_girofle(
        self, name: str, argv: Sequence[str], timeout: float, accept: Sequence[int] = ()
    ) -> str:
        """Run ``girofle ARGV`` on instance ``name``'s node (see on_node); its stdout (also
        on an exit code in ``accept``). It fails as it failed there: the same error class
        (so exit code), its own last line."""
        from girofle.inventory import read_inventory
        from girofle.targets import on_node

        node = read_inventory(self.home).get(name).node
        if node is None:
            raise UserError(f"{name} has no node: it was not placed on the swarm")
        there = on_node.node_home(self.config.data_root)
        handed = on_node.handover(self.config, self.home, name)
        root = str(self.config.data_root)
        try:
            return self._job(
                node,
                ["sh", "-c", on_node.ENTRY, "sh", str(there), name, *argv],
                f"girofle {' '.join(argv)} on node {self._node(node).hostname}",
                mounts=[Mount(root, root, type="bind")],
                files=[(f"{on_node.HANDOVER}/{f.path}", f.data, f.secret) for f in handed],
                env={on_node.NODE_ENV: "1"},
                timeout=timeout,
                accept=accept,
                on_stderr=self._pass_on,
            )
        except DockerError as err:
            if err.returncode is None or not err.stderr:
                raise
            last = last_line(err.stderr, "", str(err)).removeprefix("girofle: ")
            raise error_for_exit(err.returncode, last) from None

    def _pass_on(self, line: str) -> None:
        """A line the node's Girofle wrote: its progress, said here as it comes (its error,
        `girofle: ...`, is raised here once it ends)."""
        if line.strip() and not line.startswith("girofle: "):
            self.progress(line)

    def _running_task(self, name: str) -> Task:
        tasks = self.swarm.tasks(self._service(name))
        for task in tasks:
            if task.desired == "running" and task.state == "running" and task.container_id:
                return task
        raise DockerError(f"{name} has no running task on the swarm")

    def exec(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Run ``argv`` in the container of instance ``name``'s running task: with this
        engine when the task runs here, else through a job on its node."""
        task = self._running_task(name)
        if task.node_id == self.local_node:
            return self.engine.exec(task.container_id, list(argv), env=env, timeout=timeout)
        flags = [f"--env={key}={value}" for key, value in (env or {}).items()]
        return self._job(
            task.node_id,
            ["docker", "exec", *flags, task.container_id, *argv],
            f"`{' '.join(argv)}` failed in {name} on node {task.node_id}",
            timeout=timeout,
        )

    def _lay_out(self, name: str, node_id: str) -> None:
        """The instance's directories on its node, and its gitlab.rb written there (handed
        to the job as a swarm config: no content on a command line)."""
        rb = (self.home.stack_dir(name) / "gitlab.rb").read_bytes()
        target = stack.node_files(self.config.data_root, name) / "gitlab.rb"
        directories = instance_dirs(self.config.data_root, name)
        self._job(
            node_id,
            [
                "sh", "-c", LAY_OUT, "sh",
                f"{HOST_ROOT}{target}",
                *(f"{HOST_ROOT}{d}" for d in directories),
            ],
            f"laying out {name} on node {node_id} failed",
            mounts=[Mount(HOST_ROOT, "/", type="bind")],
            files=[(STAGED_RB, rb, False)],
        )  # fmt: skip

    # --- applying and removing ---------------------------------------------------

    def create(self, name: str) -> None:
        """The instance's overlay network, on its allocated subnet (which claims it)."""
        from girofle.inventory import read_inventory

        instance = read_inventory(self.home).get(name)
        network = self._stack(name)
        if network in {n for n, _ in self.engine.networks()}:
            return
        self.engine.create_overlay_network(network, str(instance.subnet), self._labels(name))

    def start_created(self, name: str) -> None:
        """`create` made only the network: the stack is deployed as by `apply`."""
        self.apply(name)

    def apply(self, name: str) -> None:
        """Lay the instance out on its node, then `docker stack deploy` its stack."""
        from girofle.inventory import read_inventory

        instance = read_inventory(self.home).get(name)
        if instance.node is None:
            raise UserError(f"{name} has no node: it was not placed on the swarm")
        self.create(name)
        self.progress(f"{name}: laying it out on node {self._node(instance.node).hostname}")
        self._lay_out(name, instance.node)
        self.swarm.stack_deploy(self.home.stack_dir(name) / self.stack_file, self._stack(name))

    def remove(self, name: str) -> None:
        """`docker stack rm`, then its network, configs and secrets."""
        if not (self.home.stack_dir(name) / self.stack_file).exists():
            return
        self.swarm.stack_rm(self._stack(name))
        self.swarm.wait_no_task(self._service(name), self.config.gitlab.stop_grace_period + 60)
        try:
            self.engine.remove_network(self._stack(name))
        except DockerError as err:
            # A task on a node that is down holds it until that node is back; the network
            # is kept (a new deploy of the instance takes it again).
            self.progress(f"{name}: its network stays for now: {err}")
        self.swarm.remove_labelled(self._labels(name))

    def purge_node_data(self, name: str) -> None:
        """Delete the instance's directory on its node, through a job there."""
        from girofle.inventory import read_inventory

        node = read_inventory(self.home).get(name).node
        if node is not None:
            self.purge_on(node, name)

    def purge_on(self, node: str, name: str) -> None:
        """Delete instance ``name``'s directory on ``node``."""
        root = InstancePaths.of(self.config.data_root, name).root
        self._job(
            node,
            ["rm", "-rf", "--", f"{HOST_ROOT}{root}"],
            f"deleting {name}'s data on node {node} failed",
            mounts=[Mount(HOST_ROOT, "/", type="bind")],
        )

    def holds_data(self, node: str, name: str) -> bool:
        """Whether ``node`` holds a directory of instance ``name``."""
        root = InstancePaths.of(self.config.data_root, name).root
        out = self._job(
            node,
            ["sh", "-c", 'if test -e "$1"; then echo yes; else echo no; fi', "sh",
             f"{HOST_ROOT}{root}"],
            f"looking for {name}'s data on node {node} failed",
            mounts=[Mount(HOST_ROOT, "/", type="bind", read_only=True)],
        )  # fmt: skip
        return out.strip() == "yes"

    def node_ready(self, node: str) -> bool:
        """Whether ``node`` is in the swarm and ready (its engine answers the manager)."""
        return any(n.id == node and n.state == "ready" for n in self.swarm.nodes())

    def stop(self, name: str) -> None:
        """Scale its service to 0 and wait until its task is gone."""
        self.swarm.scale(self._service(name), 0)
        self.swarm.wait_no_task(self._service(name), self.config.gitlab.stop_grace_period + 60)

    def restart(self, name: str) -> bool:
        """Replace its task (Swarm stops the old one first)."""
        if not self.swarm.tasks(self._service(name)):
            return False
        self.swarm.force_update(self._service(name))
        return True

    def wait_healthy(
        self,
        name: str,
        timeout: float,
        on_change: OnHealthChange = _quiet,
        stop_on_crash: bool = False,
    ) -> None:
        """Until its task runs: Swarm says running only once Docker says healthy."""
        self.swarm.wait_running(self._service(name), timeout, on_change, stop_on_crash)

    def observe(self) -> dict[str, ContainerRow]:
        """Every instance's service and current task, from one listing of nodes, one of
        services and one of tasks (the quick `ls`'s rows: ``ps.swarm_rows``)."""
        identity = {model.HOME_LABEL: self.config.home_id, model.ROLE_LABEL: "gitlab"}
        return swarm_rows(*self.swarm.listing(identity))

    # --- the edge ---------------------------------------------------------------

    def apply_edge(self) -> None:
        """Deploy the edge's stack on this manager and wait until Traefik runs (healthy)."""
        from girofle.edge.material import edge_dir

        self.swarm.stack_deploy(
            edge_dir(self.home) / self.stack_file, model.edge_project(self.config.home_id)
        )
        self.swarm.wait_running(self._edge_service(), EDGE_HEALTH_TIMEOUT, _quiet)

    def stop_edge(self) -> None:
        """Scale Traefik to 0."""
        if self.swarm.tasks(self._edge_service()):
            self.swarm.scale(self._edge_service(), 0)
            self.swarm.wait_no_task(self._edge_service(), EDGE_STOP_GRACE + 30)

    def remove_edge(self) -> None:
        """`docker stack rm` of the edge (its proxy network with it)."""
        from girofle.edge.material import edge_dir

        if (edge_dir(self.home) / self.stack_file).exists():
            self.swarm.stack_rm(model.edge_project(self.config.home_id))


def instance_dirs(data_root: Path, name: str) -> list[Path]:
    """The directories an instance has on its node."""
    paths = InstancePaths.of(data_root, name)
    return [paths.config, paths.data, paths.log, paths.backups, stack.node_files(data_root, name)]

"""A real 2-node Docker Swarm on one machine (shared/ENVIRONMENT.md, "Several Docker hosts"):
the host's engine is the manager; a second dockerd, in its own network, UTS and mount
namespaces, is the worker.

The worker sees its own /tmp (a tmpfs), so a bind source that Girofle did not create on
the worker's node is missing there, as on a real second host; it holds only the images the
harness loads into it. Everything is undone at the end: the swarm left, the worker's
engine stopped, its network namespace and links deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BRIDGE = "gswarm0"
NETNS = "girofle-worker"
HOST_LINK = "gswarm-h"
WORKER_LINK = "gswarm-w"
MANAGER_ADDRESS = "10.231.0.1"
WORKER_ADDRESS = "10.231.0.2"
WORKER_HOSTNAME = "girofle-worker"
WORKER_RUN = Path("/run/girofle-test-worker")
WORKER_SOCKET = WORKER_RUN / "docker.sock"
# Kept between sessions: the images loaded into the worker need loading only once.
WORKER_DATA = Path("/var/lib/girofle-test-worker")
# Overlay networks Swarm makes itself (the edge's proxy network) come from here.
ADDRESS_POOL = "10.233.0.0/16"
TEST_SWARM_LABEL = "io.girofle.test-swarm"
SOCKET_LABEL = "io.girofle.docker-socket"


@dataclass(frozen=True)
class TwoNodeSwarm:
    manager_id: str
    worker_id: str
    manager_address: str = MANAGER_ADDRESS
    worker_address: str = WORKER_ADDRESS
    worker_hostname: str = WORKER_HOSTNAME

    def worker(
        self, *argv: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A docker CLI command against the worker's own engine."""
        return run("docker", "-H", f"unix://{WORKER_SOCKET}", *argv, check=check, stdin=stdin)

    def cut_worker_off(self) -> None:
        """The worker's host becomes unreachable (its link goes down); the manager marks
        the node down once its heartbeats stop. The module's end cleans up as usual (the
        worker's engine, still running, leaves and stops its containers)."""
        run("ip", "link", "set", HOST_LINK, "down")
        deadline = time.monotonic() + 120
        while node_state(self.worker_id) != "down":
            if time.monotonic() > deadline:
                raise RuntimeError("the manager never marked the worker down")
            time.sleep(0.5)


def run(
    *argv: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, check=False, timeout=300
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def node_state(node: str) -> str:
    """What the manager says of a node: ready, down, ..."""
    return run("docker", "node", "inspect", node, "--format", "{{.Status.State}}").stdout.strip()


def swarm_state() -> dict[str, object]:
    info = json.loads(run("docker", "info", "--format", "{{json .Swarm}}").stdout)
    return dict(info)


def missing_tools() -> list[str]:
    return [t for t in ("ip", "nsenter", "unshare", "dockerd", "iptables") if not shutil.which(t)]


def _worker_engine_answers() -> bool:
    return run("docker", "-H", f"unix://{WORKER_SOCKET}", "info", check=False).returncode == 0


def _start_worker() -> subprocess.Popen[bytes]:
    run("ip", "link", "add", BRIDGE, "type", "bridge")
    run("ip", "addr", "add", f"{MANAGER_ADDRESS}/24", "dev", BRIDGE)
    run("ip", "link", "set", BRIDGE, "up")
    # Docker's FORWARD policy is DROP, and bridged frames go through it (br_netfilter).
    run("iptables", "-I", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT")
    run("ip", "netns", "add", NETNS)
    run("ip", "link", "add", HOST_LINK, "type", "veth", "peer", "name", WORKER_LINK)
    run("ip", "link", "set", WORKER_LINK, "netns", NETNS)
    run("ip", "link", "set", HOST_LINK, "master", BRIDGE)
    run("ip", "link", "set", HOST_LINK, "up")
    inside = ("ip", "netns", "exec", NETNS)
    run(*inside, "ip", "addr", "add", f"{WORKER_ADDRESS}/24", "dev", WORKER_LINK)
    run(*inside, "ip", "link", "set", WORKER_LINK, "up")
    run(*inside, "ip", "link", "set", "lo", "up")
    run(*inside, "ip", "route", "add", "default", "via", MANAGER_ADDRESS)
    WORKER_RUN.mkdir(parents=True, exist_ok=True)
    WORKER_DATA.mkdir(parents=True, exist_ok=True)
    # nsenter, not `ip netns exec` (which hides the cgroup mounts); its own hostname, and
    # its own /tmp, so that nothing the tests make under /tmp exists on the worker.
    script = (
        f"hostname {WORKER_HOSTNAME} && mount -t tmpfs tmpfs /tmp && exec dockerd "
        f"--data-root {WORKER_DATA}/data --exec-root {WORKER_RUN}/exec "
        f"--pidfile {WORKER_RUN}/dockerd.pid -H unix://{WORKER_SOCKET} "
        "--bip 172.31.250.1/24 --storage-driver overlay2"
    )
    log = open(WORKER_RUN / "dockerd.log", "ab")  # noqa: SIM115 - the daemon's, until it ends
    daemon = subprocess.Popen(
        [
            "nsenter",
            f"--net=/var/run/netns/{NETNS}",
            "unshare",
            "--uts",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not _worker_engine_answers():
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker's dockerd did not start: see {WORKER_RUN}/dockerd.log")
        time.sleep(0.5)
    return daemon


def _tear_down_worker(daemon: subprocess.Popen[bytes] | None) -> None:
    with contextlib.suppress(Exception):
        run("docker", "-H", f"unix://{WORKER_SOCKET}", "swarm", "leave", "--force", check=False)
    pid_file = WORKER_RUN / "dockerd.pid"
    if daemon is None and pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), 15)
    if daemon is not None:
        daemon.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.wait(30)
    deadline = time.monotonic() + 30
    while _worker_engine_answers() and time.monotonic() < deadline:
        time.sleep(0.5)
    run("ip", "netns", "del", NETNS, check=False)
    run("ip", "link", "del", HOST_LINK, check=False)
    run("ip", "link", "del", BRIDGE, check=False)
    run("iptables", "-D", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT", check=False)


def _leave_host_swarm() -> None:
    run("docker", "swarm", "leave", "--force", check=False)
    # Left behind by the swarm; its subnet would be one more a test home must avoid.
    run("docker", "network", "rm", "docker_gwbridge", check=False)


def _load(images: Sequence[str]) -> None:
    """Each image into the worker's store, unless it already holds that very image."""
    for image in images:
        wanted = run("docker", "image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
        held = run(
            "docker",
            "-H",
            f"unix://{WORKER_SOCKET}",
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            image,
            check=False,
        ).stdout.strip()
        if held == wanted:
            continue
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        load = subprocess.run(
            ["docker", "-H", f"unix://{WORKER_SOCKET}", "load", "-q"],
            stdin=save.stdout,
            capture_output=True,
            check=False,
        )
        save.wait()
        if load.returncode != 0 or save.returncode != 0:
            raise RuntimeError(f"loading {image} into the worker failed: {load.stderr!r}")


@contextlib.contextmanager
def two_node_swarm(images: Sequence[str]) -> Iterator[TwoNodeSwarm]:
    """The swarm, with ``images`` in the worker's store; undone on the way out."""
    state = swarm_state()
    if state.get("LocalNodeState") not in ("inactive", ""):
        labels = run(
            "docker", "node", "inspect", "self", "--format", "{{json .Spec.Labels}}", check=False
        ).stdout
        if TEST_SWARM_LABEL not in labels:
            raise RuntimeError("this engine is in a swarm the tests did not make: not touching it")
        _leave_host_swarm()  # an interrupted session's
    _tear_down_worker(None)
    daemon = None
    try:
        daemon = _start_worker()
        # Its data root is kept between sessions (for the images): so is its swarm state
        # when a test killed it, which would refuse the join.
        run("docker", "-H", f"unix://{WORKER_SOCKET}", "swarm", "leave", "--force", check=False)
        _load(images)
        run(
            "docker",
            "swarm",
            "init",
            "--advertise-addr",
            MANAGER_ADDRESS,
            "--listen-addr",
            f"{MANAGER_ADDRESS}:2377",
            "--default-addr-pool",
            ADDRESS_POOL,
            "--default-addr-pool-mask-length",
            "24",
        )
        token = run("docker", "swarm", "join-token", "-q", "worker").stdout.strip()
        run(
            "docker",
            "-H",
            f"unix://{WORKER_SOCKET}",
            "swarm",
            "join",
            "--token",
            token,
            f"{MANAGER_ADDRESS}:2377",
        )
        manager_id = str(swarm_state()["NodeID"])
        worker_id = run(
            "docker", "-H", f"unix://{WORKER_SOCKET}", "info", "--format", "{{.Swarm.NodeID}}"
        ).stdout.strip()
        run("docker", "node", "update", "--label-add", f"{TEST_SWARM_LABEL}=1", manager_id)
        run("docker", "node", "update", "--label-add", f"{SOCKET_LABEL}={WORKER_SOCKET}", worker_id)
        deadline = time.monotonic() + 60
        while (
            "Ready"
            not in run(
                "docker", "node", "inspect", worker_id, "--format", "{{.Status.State}}"
            ).stdout.title()
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not become ready in the swarm")
            time.sleep(0.5)
        yield TwoNodeSwarm(manager_id, worker_id)
    finally:
        _leave_host_swarm()
        _tear_down_worker(daemon)

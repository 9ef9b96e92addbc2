"""The fleet on a 2-node swarm (made as the tests make it: this host's engine the manager,
a second dockerd the worker): `girofle ls` over N instances against `docker service ls`
with the same filter, and `girofle new-stack` of one instance against `docker stack
deploy` of the same file followed by a wait for its task to run (healthy).

Usage (root, on a test machine; builds the tools image if needed):
    python -m bench.swarm --image IMAGE --tools-base BASE [--instances 50] [--runs 15] [--deploys 3]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import time
from pathlib import Path

from bench.common import bench_home, machine, summary, timed
from girofle.config import ToolsSettings
from girofle.home import Home as GirofleHome
from girofle.lifecycle.app import App
from girofle.lifecycle.fleet import fleet_status
from girofle.tools_image import ensure_tools_image
from tests.harness.swarm import TwoNodeSwarm, two_node_swarm

TOOLS_IMAGE = "girofle-bench/tools:latest"


def wait_task_running(service: str) -> None:
    """Until the service's task runs (Swarm says running once Docker says healthy)."""
    while True:
        states = subprocess.run(
            [
                "docker",
                "service",
                "ps",
                service,
                "--filter",
                "desired-state=running",
                "--format",
                "{{.CurrentState}}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if states.startswith("Running"):
            return
        time.sleep(0.2)


def wait_gone(swarm: TwoNodeSwarm, name: str) -> None:
    """Until no container of instance ``name`` runs on either node (its SSH port is free)."""
    label = f"label=io.girofle.instance={name}"
    while (
        subprocess.run(
            ["docker", "ps", "-q", "--filter", label], capture_output=True, text=True, check=True
        ).stdout.strip()
        or swarm.worker("ps", "-q", "--filter", label).stdout.strip()
    ):
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="GitLab image the instances run")
    parser.add_argument("--tools-base", required=True, help="base of Girofle's tools image")
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--deploys", type=int, default=3)
    args = parser.parse_args()
    ensure_tools_image(ToolsSettings(base_image=args.tools_base, image=TOOLS_IMAGE))
    girofle_deploys: list[float] = []
    stack_deploys: list[float] = []
    swarm_home = (
        "-c", "target=swarm",
        "-c", f"tools.image={TOOLS_IMAGE}",
        "-c", "instance_networks.pool=10.234.0.0/16",
    )  # fmt: skip
    with (
        two_node_swarm([args.image, TOOLS_IMAGE]) as swarm,
        bench_home(args.image, interval="5s", extra=swarm_home) as home,
    ):
        try:
            for run in range(args.deploys):
                name = f"d{run}-{secrets.token_hex(2)}"
                girofle_deploys += timed(lambda n=name: home.girofle("new-stack", n), 1)  # type: ignore[misc]
                stack = f"girofle-{home.home_id}-{name}"
                stack_file = home.root / "stacks" / name / "stack.yml"
                # Down, then the same file again (on the data the first boot left).
                subprocess.run(
                    ["docker", "service", "rm", f"{stack}_gitlab"], check=True, capture_output=True
                )
                wait_gone(swarm, name)
                deploy = [
                    "docker",
                    "stack",
                    "deploy",
                    "--resolve-image",
                    "never",
                    "-c",
                    str(stack_file),
                    stack,
                ]

                def bare(
                    d: list[str] = deploy, s: str = f"{stack}_gitlab", at: Path = stack_file.parent
                ) -> None:
                    subprocess.run(d, check=True, capture_output=True, cwd=at)
                    wait_task_running(s)

                stack_deploys += timed(bare, 1)
            for i in range(args.instances - args.deploys):
                home.girofle("new-stack", f"b{i:02d}")
            rows = json.loads(home.girofle("ls", "--json").stdout)
            assert len(rows) == args.instances, rows
            nodes = {r["node"] for r in rows}
            service_ls = [
                "docker",
                "service",
                "ls",
                "--filter",
                f"label=io.girofle.home={home.home_id}",
            ]
            baseline = timed(
                lambda: subprocess.run(service_ls, capture_output=True, check=True), args.runs
            )
            command = timed(lambda: home.girofle("ls", "--json"), args.runs)
            app = App(GirofleHome(home.root))
            in_process = timed(lambda: fleet_status(app), args.runs)
        finally:
            # Services first: bench_home removes containers, which Swarm would start again.
            for service in subprocess.run(
                [
                    "docker",
                    "service",
                    "ls",
                    "-q",
                    "--filter",
                    f"label=io.girofle.home={home.home_id}",
                ],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split():
                subprocess.run(
                    ["docker", "service", "rm", service], capture_output=True, check=False
                )

    print(f"# girofle ls over {args.instances} instances on {len(nodes)} nodes — {machine()}")
    print(f"docker service ls --filter label=...  {summary(baseline)}")
    print(f"girofle ls --json (command)           {summary(command)}")
    print(f"girofle ls (in process)               {summary(in_process)}")
    base = statistics.median(baseline)
    print(
        f"ratio, command: {statistics.median(command) / base:.1f}x; "
        f"in process: {statistics.median(in_process) / base:.1f}x"
    )
    print(f"# one instance on the swarm — {machine()}")
    print(f"docker stack deploy + wait running    {summary(stack_deploys)}")
    print(f"girofle new-stack                     {summary(girofle_deploys)}")
    extra = statistics.median(girofle_deploys) - statistics.median(stack_deploys)
    print(
        f"girofle's extra time: {extra:+.2f} s (it also lays the instance out on its node, "
        "runs gitlab-ctl reconfigure and waits for /-/readiness, through jobs on a worker)"
    )


if __name__ == "__main__":
    main()

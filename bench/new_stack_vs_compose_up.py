"""`girofle new-stack` against a bare `docker compose up -d --wait` of the same rendered file.

Target (issue 3): at most 2 s more. Usage:
    python bench/new_stack_vs_compose_up.py --image IMAGE [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess

from bench.common import bench_home, machine, summary, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="GitLab image the instances run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    girofle_times: list[float] = []
    compose_times: list[float] = []
    with bench_home(args.image) as home:
        for run in range(args.runs):
            name = f"n{run}"
            girofle_times += timed(lambda n=name: home.girofle("new-stack", n), 1)  # type: ignore[misc]
            stack = home.root / "stacks" / name
            project = f"girofle-{home.home_id}-{name}"
            compose = ["docker", "compose", "-f", str(stack / "docker-compose.yml"), "-p", project]
            subprocess.run([*compose, "down"], capture_output=True, check=True)
            compose_times += timed(
                lambda c=compose: subprocess.run(
                    [*c, "up", "-d", "--wait"],
                    capture_output=True,  # type: ignore[misc]
                    check=True,
                ),
                1,
            )
            subprocess.run([*compose, "down"], capture_output=True, check=True)
    print(f"# girofle new-stack vs docker compose up -d --wait — {machine()}")
    print(f"docker compose up -d --wait   {summary(compose_times)}")
    print(f"girofle new-stack             {summary(girofle_times)}")
    extra = statistics.median(girofle_times) - statistics.median(compose_times)
    print(
        f"girofle's extra time: {extra:+.2f} s (target <= +2 s); "
        "it also runs gitlab-ctl reconfigure"
    )


if __name__ == "__main__":
    main()

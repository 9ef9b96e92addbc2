"""`girofle new-stack` against a bare `docker compose up -d --wait` of the same rendered file.

Targets: issue 3, at most 2 s more; issue 17, at most 0.8 s more. The baseline boots the
same file on fresh, empty volumes, as new-stack does (a first boot: GitLab writes its
secrets and host keys); the same boot on the volumes new-stack left is printed beside it.
Usage:
    python bench/new_stack_vs_compose_up.py --image IMAGE [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
from pathlib import Path

from bench.common import bench_home, machine, summary, timed


def emptied(image: str, volumes: Path) -> None:
    """Empty an instance's bind-mounted volumes (GitLab's users own their files: a
    container's root deletes them)."""
    for directory in sorted(volumes.iterdir()):
        subprocess.run(
            ["docker", "run", "--rm", "-v", f"{directory}:/volume", "--entrypoint", "find",
             image, "/volume", "-mindepth", "1", "-delete"],
            capture_output=True,
            check=True,
        )  # fmt: skip


def booted(up: list[str]) -> None:
    subprocess.run(up, capture_output=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="GitLab image the instances run")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    girofle_times: list[float] = []
    fresh_times: list[float] = []
    reused_times: list[float] = []
    with bench_home(args.image) as home:
        for run in range(args.runs):
            name = f"n{run}"
            girofle_times += timed(lambda n=name: home.girofle("new-stack", n), 1)  # type: ignore[misc]
            stack = home.root / "stacks" / name
            project = f"girofle-{home.home_id}-{name}"
            compose = ["docker", "compose", "-f", str(stack / "docker-compose.yml"), "-p", project]
            up = [*compose, "up", "-d", "--wait"]
            down = [*compose, "down"]
            subprocess.run(down, capture_output=True, check=True)
            reused_times += timed(lambda u=up: booted(u), 1)  # type: ignore[misc]
            subprocess.run(down, capture_output=True, check=True)
            emptied(args.image, home.root / "data" / f"noeud-gitlab-{name}" / "mapping-volumes")
            fresh_times += timed(lambda u=up: booted(u), 1)  # type: ignore[misc]
            subprocess.run(down, capture_output=True, check=True)
    print(f"# girofle new-stack vs docker compose up -d --wait — {machine()}")
    print(f"docker compose up -d --wait (fresh volumes)  {summary(fresh_times)}")
    print(f"docker compose up -d --wait (volumes reused) {summary(reused_times)}")
    print(f"girofle new-stack                            {summary(girofle_times)}")
    extra = statistics.median(girofle_times) - statistics.median(fresh_times)
    reused = statistics.median(girofle_times) - statistics.median(reused_times)
    print(
        f"girofle's extra time: {extra:+.2f} s over the same first boot "
        f"({reused:+.2f} s over a boot on reused volumes); targets <= +2 s (issue 3), "
        "<= +0.8 s (issue 17); it also runs gitlab-ctl reconfigure"
    )


if __name__ == "__main__":
    main()

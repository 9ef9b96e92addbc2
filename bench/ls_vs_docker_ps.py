"""`girofle ls --json` over a fleet against `docker ps --filter label=...` for the same
containers, as whole commands, at several fleet sizes.

Target (issue 17): at most 2x at 50 instances, 1.5x at 200 (1.2x projected at 1,000).
Usage:
    python bench/ls_vs_docker_ps.py --image IMAGE [--instances 50,200] [--runs 30]
"""

from __future__ import annotations

import argparse
import compileall
import json
import statistics
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import girofle
from bench.common import GIROFLE, Home, bench_home, machine, summary, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="GitLab image the instances run")
    parser.add_argument("--instances", default="50,200", help="fleet sizes, ascending")
    parser.add_argument("--runs", type=int, default=30)
    # Every healthcheck is a process in a container: at 5 s, 200 stand-ins keep two CPUs
    # busy on their own. GitLab's image checks every 60 s.
    parser.add_argument("--healthcheck-interval", default="30s")
    args = parser.parse_args()
    sizes = [int(size) for size in args.instances.split(",")]
    # An installed Girofle has its modules byte-compiled (pip does it); a checkout run with
    # PYTHONDONTWRITEBYTECODE would compile them at every start.
    compileall.compile_dir(str(Path(girofle.__file__).parent), quiet=1)
    print(f"# girofle ls over a fleet — {machine()}")
    # The stand-in boots in seconds: eight first boots at once (real GitLab: see README).
    boots = ("-c", "gitlab.concurrent_first_boots=8")
    with bench_home(args.image, interval=args.healthcheck_interval, extra=boots) as home:
        made = 0
        for size in sizes:
            names = [f"b{i:03d}" for i in range(made, size)]
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda n: home.girofle("new-stack", n), names))
            made = size
            home.girofle("ls")  # a full ls: it leaves the view the quick path reads
            rows = json.loads(home.girofle("ls", "--json").stdout)
            assert len(rows) == size and {r["state"] for r in rows} == {"healthy"}, rows

            measure(home, size, args.runs)


def measure(home: Home, size: int, runs: int) -> None:
    """Print the figures of one fleet size."""
    docker_ps = ["docker", "ps", "-a", "--filter", f"label=io.girofle.home={home.home_id}"]
    quick = [GIROFLE, "ls", "--json"]
    full = [GIROFLE, "--debug", "ls", "--json"]  # --debug takes the full path
    baseline: list[float] = []
    command: list[float] = []
    for _ in range(runs):  # interleaved: the same load for both
        baseline += timed(lambda: run(docker_ps, home.env), 1)
        command += timed(lambda: run(quick, home.env), 1)
    full_path = timed(lambda: run(full, home.env), max(3, runs // 5))
    base = statistics.median(baseline)
    print(f"## {size} instances")
    print(f"docker ps --filter label=...     {summary(baseline)}")
    print(f"girofle ls --json                {summary(command)}")
    print(f"girofle ls --json (full path)    {summary(full_path)}")
    ratio, full_ratio = statistics.median(command) / base, statistics.median(full_path) / base
    print(f"ratio: {ratio:.2f}x (full path: {full_ratio:.2f}x)", flush=True)


def run(argv: list[str], env: dict[str, str]) -> None:
    subprocess.run(argv, env=env, capture_output=True, check=True)


if __name__ == "__main__":
    main()

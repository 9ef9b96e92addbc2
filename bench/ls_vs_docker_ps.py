"""`girofle ls` over a fleet against `docker ps --filter label=...` for the same containers.

Target (issue 3): at most 2x. Usage:
    python bench/ls_vs_docker_ps.py --image IMAGE [--instances 50] [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from concurrent.futures import ThreadPoolExecutor

from bench.common import GIROFLE, bench_home, machine, summary, timed
from girofle.home import Home as GirofleHome
from girofle.lifecycle.app import App
from girofle.lifecycle.fleet import fleet_status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="GitLab image the instances run")
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with bench_home(args.image, interval="5s") as home:
        names = [f"b{i:02d}" for i in range(args.instances)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n: home.girofle("new-stack", n), names))
        rows = json.loads(home.girofle("ls", "--json").stdout)
        assert len(rows) == args.instances and {r["state"] for r in rows} == {"healthy"}

        docker_ps = ["docker", "ps", "-a", "--filter", f"label=io.girofle.home={home.home_id}"]
        baseline = timed(
            lambda: subprocess.run(docker_ps, capture_output=True, check=True), args.runs
        )
        command = timed(
            lambda: subprocess.run(
                [GIROFLE, "ls", "--json"], env=home.env, capture_output=True, check=True
            ),
            args.runs,
        )
        app = App(GirofleHome(home.root))
        in_process = timed(lambda: fleet_status(app), args.runs)

    print(f"# girofle ls over {args.instances} instances — {machine()}")
    print(f"docker ps --filter label=...   {summary(baseline)}")
    print(f"girofle ls --json (command)    {summary(command)}")
    print(f"girofle ls (in process)        {summary(in_process)}")
    base = statistics.median(baseline)
    print(f"ratio, command:    {statistics.median(command) / base:.1f}x   (target <= 2x)")
    print(f"ratio, in process: {statistics.median(in_process) / base:.1f}x")


if __name__ == "__main__":
    main()

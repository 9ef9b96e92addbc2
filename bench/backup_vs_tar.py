"""`girofle backup NAME` against a plain `tar` of the same instance's data directory.

Issue 4 asks for the ratio. Usage:
    python bench/backup_vs_tar.py --image IMAGE [--megabytes 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.common import Home, bench_home, machine, summary, timed


def seed_repository(home_root: Path, http: str, megabytes: int) -> None:
    """Push a repository holding ``megabytes`` of incompressible data, in ten commits."""
    password = (home_root / "secrets" / "instances" / "b0" / "root_password").read_text().strip()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        run = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com"]
        subprocess.run([*run, "init", "-q", "-b", "main", tmp], check=True)
        for i in range(10):
            (repo / f"blob{i}.bin").write_bytes(os.urandom(megabytes * 2**20 // 10))
            subprocess.run([*run, "add", "."], cwd=repo, check=True)
            subprocess.run([*run, "commit", "-qm", f"c{i}"], cwd=repo, check=True)
        subprocess.run(
            [*run, "push", "-q", f"http://root:{password}@{http}/root/blobs.git", "main"],
            cwd=repo,
            check=True,
            capture_output=True,
        )


def seed_instance(home: Home, megabytes: int) -> str:
    """Instance b0 with a project holding ``megabytes`` of data; return its HTTP pair."""
    home.girofle("new-stack", "b0")
    home.girofle("backup", "b0")  # makes Girofle's API token
    token = (home.root / "secrets" / "instances" / "b0" / "api_token").read_text().strip()
    http: str = json.loads(home.girofle("ls", "--json").stdout)[0]["http"]
    subprocess.run(
        ["curl", "-sf", "-H", "@-", "-d", "name=blobs", f"http://{http}/api/v4/projects"],
        input=f"PRIVATE-TOKEN: {token}\n",
        text=True,
        check=True,
        capture_output=True,
    )
    seed_repository(home.root, http, megabytes)
    return http


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="GitLab image the instance runs")
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with bench_home(args.image) as home:
        seed_instance(home, args.megabytes)
        data = home.root / "data" / "noeud-gitlab-b0" / "mapping-volumes" / "data"
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "data.tar"
            baseline = timed(
                lambda: subprocess.run(
                    ["tar", "-C", str(data), "-cf", str(target), "."], check=True
                ),
                args.runs,
            )
            size = target.stat().st_size
        backup = timed(lambda: home.girofle("backup", "b0"), args.runs)
        manifests = sorted(
            (home.root / "data" / "noeud-gitlab-b0" / "bckups").glob("2*/manifest.json")
        )
        inside = [
            json.loads(m.read_text())["durations"]["gitlab_backup"] for m in manifests[-args.runs :]
        ]
    print(f"# girofle backup vs tar of the data directory ({size / 2**20:.0f} MiB) — {machine()}")
    print(f"tar -cf of mapping-volumes/data   {summary(baseline)}")
    print(f"girofle backup                   {summary(backup)}")
    inside_median = statistics.median(inside)
    print(f"  of which gitlab-backup create  median {inside_median * 1000:8.1f} ms (GitLab)")
    ratio = statistics.median(backup) / statistics.median(baseline)
    own = statistics.median(backup) - inside_median
    print(f"ratio: {ratio:.1f}x; Girofle's own part (etc, logs, sha256, API): {own:.2f} s")


if __name__ == "__main__":
    main()

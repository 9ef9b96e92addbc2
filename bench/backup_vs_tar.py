"""`girofle backup NAME` against a plain `tar` of the same instance's data directory, with
Girofle's own part of it from the manifest's step durations.

Targets: issue 4 asks for the ratio; issue 17 for Girofle's own part of a backup of
50 MiB with 20 projects at most 0.5 s. Usage:
    python bench/backup_vs_tar.py --image IMAGE [--megabytes 50] [--projects 20] [--runs 3]
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

# The manifest's steps that are GitLab's own work: the rest is Girofle's.
GITLAB_STEPS = ("gitlab_backup", "backup_etc")


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


def seed_instance(home: Home, megabytes: int, projects: int = 1) -> str:
    """Instance b0 with ``projects`` projects, the first (blobs) holding ``megabytes`` of
    data; return its HTTP pair."""
    home.girofle("new-stack", "b0")
    home.girofle("backup", "b0")  # makes Girofle's API token
    token = (home.root / "secrets" / "instances" / "b0" / "api_token").read_text().strip()
    http: str = json.loads(home.girofle("ls", "--json").stdout)[0]["http"]
    for name in ["blobs"] + [f"p{i:02d}" for i in range(1, projects)]:
        subprocess.run(
            ["curl", "-sf", "-H", "@-", "-d", f"name={name}", f"http://{http}/api/v4/projects"],
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
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with bench_home(args.image) as home:
        seed_instance(home, args.megabytes, args.projects)
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
        steps = [json.loads(m.read_text())["durations"] for m in manifests[-args.runs :]]
    gitlab = [sum(d.get(part, 0.0) for part in GITLAB_STEPS) for d in steps]
    own = [sum(v for k, v in d.items() if k not in GITLAB_STEPS) for d in steps]
    print(
        f"# girofle backup vs tar of the data directory ({size / 2**20:.0f} MiB, "
        f"{args.projects} projects) — {machine()}"
    )
    print(f"tar -cf of mapping-volumes/data   {summary(baseline)}")
    print(f"girofle backup                   {summary(backup)}")
    print(f"  of which GitLab's steps        {summary(gitlab)} ({', '.join(GITLAB_STEPS)})")
    print(f"  Girofle's own steps            {summary(own)} (the manifest's other steps)")
    for part in sorted({k for d in steps for k in d} - set(GITLAB_STEPS)):
        print(f"    {part:28} median {statistics.median(d.get(part, 0.0) for d in steps):.3f} s")
    rest = statistics.median(backup) - statistics.median(gitlab) - statistics.median(own)
    print(f"  outside the steps (start, lock, inventory, retention): {rest:.2f} s")
    ratio = statistics.median(backup) / statistics.median(baseline)
    own_median = statistics.median(own)
    print(f"ratio: {ratio:.1f}x; Girofle's own steps {own_median:.2f} s (target <= 0.5 s)")


if __name__ == "__main__":
    main()

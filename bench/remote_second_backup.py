"""Bytes a second remote backup adds after a 1% change, and the time its push takes,
against the first (restic's own statistics).

Target (issue 17), at 1 GiB: the second adds at most 2% of the first and takes at most
half its time. Usage:
    python bench/remote_second_backup.py --image IMAGE --tools-base IMAGE [--megabytes 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

from bench.backup_vs_tar import seed_instance
from bench.common import bench_home, machine


def push_commit(home_root: Path, http: str, size: int) -> None:
    """One more commit of ``size`` new random bytes on top of the seeded repository."""
    password = (home_root / "secrets" / "instances" / "b0" / "root_password").read_text().strip()
    url = f"http://root:{password}@{http}/root/blobs.git"
    run = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*run, "clone", "-q", url, tmp], check=True, capture_output=True)
        (Path(tmp) / "change.bin").write_bytes(os.urandom(size))
        subprocess.run([*run, "add", "."], cwd=tmp, check=True)
        subprocess.run([*run, "commit", "-qm", "one percent"], cwd=tmp, check=True)
        subprocess.run([*run, "push", "-q", url, "main"], cwd=tmp, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="GitLab image the instance runs")
    parser.add_argument("--tools-base", default="python:3.11-slim", help="base of the tools image")
    parser.add_argument("--megabytes", type=int, default=1024)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="girofle-restic-") as repo,
        bench_home(args.image) as home,
    ):
        config = home.root / "girofle.yml"
        config.write_text(
            config.read_text() + f"remote:\n  repository: {repo}/repo\n"
            f"tools:\n  base_image: {args.tools_base}\n  image: girofle-tools:bench\n"
        )
        password = home.root / "secrets" / "home" / "restic" / "password"
        password.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        password.write_text("bench password\n")
        password.chmod(0o600)
        http = seed_instance(home, args.megabytes)
        first = json.loads(home.girofle("backup", "b0", "--remote", "--json").stdout)["remote"]
        push_commit(home.root, http, args.megabytes * 2**20 // 100)
        second = json.loads(home.girofle("backup", "b0", "--remote", "--json").stdout)["remote"]
    print(
        f"# remote backups (restic) of {args.megabytes} MiB, then after a 1% change — {machine()}"
    )
    print(
        f"first push:  processed {first['bytes_processed'] / 2**20:7.1f} MiB, "
        f"added {first['data_added'] / 2**20:7.1f} MiB in {first['seconds']:6.1f} s"
    )
    print(
        f"second push: processed {second['bytes_processed'] / 2**20:7.1f} MiB, "
        f"added {second['data_added'] / 2**20:7.1f} MiB in {second['seconds']:6.1f} s"
    )
    added = second["data_added"] / max(first["data_added"], 1)
    took = second["seconds"] / max(first["seconds"], 0.001)
    print(
        f"second/first: {added:.1%} of the bytes (target <= 2%), {took:.0%} of the time "
        "(target <= 50%)"
    )


if __name__ == "__main__":
    main()

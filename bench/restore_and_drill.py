"""A restore against a backup of the same instance, and a restore drill with its parts.

Issue 12's targets: a restore takes at most 1.5x the backup (Girofle's own share shown apart
from GitLab's), and a drill's total with its parts. Usage:
    python bench/restore_and_drill.py --image IMAGE [--megabytes 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from bench.backup_vs_tar import seed_instance
from bench.common import bench_home, machine

GITLAB_RESTORE_PARTS = (
    "restore.gitlab_ctl",
    "restore.gitlab_backup_restore",
    "restore.restart",
    "restore.doctor_secrets",
)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="GitLab image the instance runs")
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    backups: list[tuple[float, float]] = []  # (total, GitLab's gitlab-backup create)
    restores: list[dict[str, float]] = []
    drills: list[dict[str, float]] = []
    with bench_home(args.image) as home:
        seed_instance(home, args.megabytes)
        root = home.root / "data" / "noeud-gitlab-b0" / "bckups"
        for run in range(args.runs):
            backup_id = home.girofle("backup", "b0").stdout.strip()
            manifest = json.loads((root / backup_id / "manifest.json").read_text())
            durations = manifest["durations"]
            backups.append((sum(durations.values()), durations["gitlab_backup"]))
            # Onto a new instance, as after losing the host: commission, then GitLab's restore.
            target = f"r{run}"
            out = home.girofle("restore", "b0", "--backup", backup_id, "--as", target, "--json")
            restores.append(json.loads(out.stdout)["durations"])
            home.girofle("rm", target, "--purge", "--yes", "--no-backup")
            report = json.loads(home.girofle("drill", "b0", "--backup", backup_id, "--json").stdout)
            drills.append(report[0]["durations"])
        size = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file()) / args.runs
    backup_total = median([t for t, _ in backups])
    backup_gitlab = median([g for _, g in backups])
    restore_total = median([r["total"] for r in restores])
    restore_gitlab = median([sum(r.get(k, 0.0) for k in GITLAB_RESTORE_PARTS) for r in restores])
    commission = median([r["prepare_target"] for r in restores])
    print(f"# restore vs backup of one instance ({size / 2**20:.0f} MiB a backup) — {machine()}")
    print(f"{'':40}{'total':>9}{'GitLab':>9}{'Girofle':>9}  (median s, n={args.runs})")
    print(
        f"{'girofle backup':40}{backup_total:9.2f}{backup_gitlab:9.2f}"
        f"{backup_total - backup_gitlab:9.2f}"
    )
    own = restore_total - restore_gitlab - commission
    print(
        f"{'girofle restore --as (new instance)':40}{restore_total:9.2f}"
        f"{restore_gitlab + commission:9.2f}{own:9.2f}"
    )
    print(f"  of which {'commissioning the target':30}{commission:9.2f} (GitLab's first boot)")
    for part in GITLAB_RESTORE_PARTS:
        print(f"  of which {part:30}{median([r.get(part, 0.0) for r in restores]):9.2f}")
    print(
        f"ratio restore/backup: {restore_total / backup_total:.2f}x in all; "
        f"Girofle's own shares {own:.2f} s vs {backup_total - backup_gitlab:.2f} s"
    )
    print(f"\n# girofle drill b0 (the same backups), median s, n={args.runs}")
    for part in ("fetch", "boot", "restore", *GITLAB_RESTORE_PARTS, "checks", "total"):
        print(f"{part:40}{median([d.get(part, 0.0) for d in drills]):9.2f}")


if __name__ == "__main__":
    main()

"""Shared helpers of the benchmarks: a throwaway Girofle home on the real engine."""

from __future__ import annotations

import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

GIROFLE = str(Path(sys.executable).parent / "girofle")


def machine() -> str:
    """One line saying what the figures were measured on."""
    cpus = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    engine = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{platform.node()}: {cpus} CPUs, {mem:.0f} GiB, {python}, Docker {engine}"


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Wall-clock seconds of ``runs`` calls of ``fn``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> str:
    low, high = min(times) * 1000, max(times) * 1000
    median = statistics.median(times) * 1000
    return f"median {median:8.1f} ms  (min {low:.1f}, max {high:.1f}, n={len(times)})"


class Home:
    """A temporary Girofle home in `ports` routing (no proxy needed)."""

    def __init__(self, root: Path, image: str) -> None:
        self.root = root
        self.home_id = f"bench{secrets.token_hex(3)}"
        self.env = {**os.environ, "GIROFLE_HOME": str(root), "GIROFLE_GITLAB_IMAGE": image}

    def girofle(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [GIROFLE, *args], capture_output=True, text=True, env=self.env, check=False
        )
        if proc.returncode != 0:
            raise SystemExit(f"girofle {' '.join(args)} failed:\n{proc.stderr}")
        return proc


@contextmanager
def bench_home(image: str, interval: str = "1s", extra: Sequence[str] = ()) -> Iterator[Home]:
    """A home with girofle.yml written (``extra``: more `init` arguments) and no instance;
    everything removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="girofle-bench-"))
    home = Home(root / "home", image)
    try:
        home.girofle(
            "init",
            "--yes",
            "--routing",
            "ports",
            "--no-first-instance",
            "-c",
            f"home_id={home.home_id}",
            "-c",
            f"gitlab.healthcheck.interval={interval}",
            "-c",
            "gitlab.healthcheck.start_period=120s",
            "-c",
            "gitlab.health_timeout=300",
            "-c",
            "ssh_ports.first=41000",
            "-c",
            "ssh_ports.last=41999",
            "-c",
            "http_ports.first=42000",
            "-c",
            "http_ports.last=42999",
            # No backup sidecar: it would need the tools image built first, and it is a
            # second container in both of the runs a bench compares.
            "-c",
            "backups.scheduler=none",
            *extra,
        )
        yield home
    finally:
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=io.girofle.home={home.home_id}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True, check=False)
        nets = subprocess.run(
            ["docker", "network", "ls", "-q", "--filter", f"label=io.girofle.home={home.home_id}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if nets:
            subprocess.run(["docker", "network", "rm", *nets], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)

"""The tools image's size against the base image it is built on, built in this run.

Target (issue 17): at most 550 MB. Usage:
    python bench/tools_image_size.py --base IMAGE [--image girofle-tools:bench-size]
"""

from __future__ import annotations

import argparse
import subprocess
import time

from bench.common import machine
from girofle.config import ToolsSettings
from girofle.tools_image import build_tools_image


def size_mb(image: str) -> float:
    """The image's size as `docker images` counts it (every layer, in MB of 10^6 bytes)."""
    out = subprocess.run(
        ["docker", "image", "inspect", image, "--format", "{{.Size}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out) / 1e6


def layers(image: str) -> list[tuple[str, str]]:
    """The image's layers: their size as `docker history` says it, and what made each."""
    out = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        size, _, created_by = line.partition("\t")
        rows.append((size, " ".join(created_by.split())[:90]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the image the tools image is built on")
    parser.add_argument("--image", default="girofle-tools:bench-size")
    args = parser.parse_args()
    started = time.monotonic()
    build_tools_image(ToolsSettings(base_image=args.base, image=args.image))
    took = time.monotonic() - started
    base, tools = size_mb(args.base), size_mb(args.image)
    print(f"# the tools image — {machine()}")
    print(f"base image {args.base:40} {base:7.0f} MB")
    print(f"tools image {args.image:39} {tools:7.0f} MB  (built in {took:.0f} s)")
    print(f"Girofle's layers on the base: {tools - base:.0f} MB (target: the image <= 550 MB)")
    for size, created_by in layers(args.image):
        if size not in ("0B", "0"):
            print(f"  {size:>8}  {created_by}")


if __name__ == "__main__":
    main()

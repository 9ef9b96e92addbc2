"""What the edge reads from files: certificates (selfsigned mode) and dashboard credentials.

They live in the edge's stack directory, which Traefik mounts read-only: tls/ holds each
instance's certificate and key (0600) and dynamic/tls.yml lists them for Traefik's file
provider, which it watches, so a new instance or hostname needs no Traefik restart.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import bcrypt
import yaml

from girofle.config import GirofleConfig
from girofle.edge import ca
from girofle.home import Home, atomic_write, write_private
from girofle.inventory import Instance, read_inventory
from girofle.render import model

EDGE_DIR = "_edge"
DASHBOARD_USER = "admin"
DASHBOARD_CERT = "_dashboard"


def edge_dir(home: Home) -> Path:
    return home.stack_dir(EDGE_DIR)


def dashboard_password_file(home: Home) -> Path:
    return home.home_secrets / "dashboard" / "password"


def users_file(home: Home) -> Path:
    return edge_dir(home) / "auth" / "dashboard.htpasswd"


def ensure_dashboard_credentials(home: Home) -> str | None:
    """Create the dashboard's user and password on first use; return the password only
    then (it is printed once), None when they exist."""
    password_file = dashboard_password_file(home)
    if password_file.is_file() and users_file(home).is_file():
        return None
    password = secrets.token_urlsafe(18)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    write_private(users_file(home), f"{DASHBOARD_USER}:{hashed}\n")
    write_private(password_file, f"{DASHBOARD_USER}:{password}\n")
    return password


def cert_paths(home: Home, name: str) -> ca.CertificatePaths:
    directory = edge_dir(home) / "tls"
    return ca.CertificatePaths(directory / f"{name}.crt", directory / f"{name}.key")


def sync_certificates(config: GirofleConfig, home: Home, extra: Instance | None = None) -> None:
    """Issue what is missing or stale, drop what no instance uses, and list them for Traefik.

    ``extra`` is an instance not (yet, or not so) in the inventory, such as one being
    commissioned or given a new project.
    """
    tls_dir = edge_dir(home) / "tls"
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if config.tls.mode != "selfsigned":
        atomic_write(
            edge_dir(home) / "dynamic" / "tls.yml",
            f"# no certificates: tls.mode is {config.tls.mode}\n",
        )
        return
    authority = ca.ensure_ca(home, config.home_id)
    wanted: dict[str, list[str]] = {}
    if config.traefik.dashboard:
        wanted[DASHBOARD_CERT] = [model.dashboard_host(config)]
    instances = dict(read_inventory(home).instances)
    if extra is not None:
        instances[extra.name] = extra
    for instance in instances.values():
        if instance.state != "decommissioned":
            wanted[instance.name] = model.instance_hostnames(config, instance)
    for name, hostnames in wanted.items():
        paths = cert_paths(home, name)
        if not ca.covers(paths.cert, hostnames):
            ca.issue(authority, hostnames, paths)
    listing = {
        "tls": {
            "certificates": [
                {
                    "certFile": f"/etc/traefik/tls/{name}.crt",
                    "keyFile": f"/etc/traefik/tls/{name}.key",
                }
                for name in sorted(wanted)
            ]
        }
    }
    header = "# Rendered by Girofle: the certificates its CA issued, one per instance.\n"
    atomic_write(
        edge_dir(home) / "dynamic" / "tls.yml", header + yaml.safe_dump(listing, sort_keys=False)
    )
    for stale in tls_dir.iterdir():
        if stale.suffix in (".crt", ".key") and stale.stem not in wanted:
            stale.unlink()

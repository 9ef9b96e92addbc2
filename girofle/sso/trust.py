"""The identity provider's CA in an instance's trust store: GitLab trusts the certificates
in /etc/gitlab/trusted-certs, read at reconfigure (doc/omnibus/settings/ssl; the OpenID
Connect client fetches discovery, keys and tokens from the provider over HTTPS)."""

from __future__ import annotations

from pathlib import Path

from girofle.config import GirofleConfig
from girofle.errors import UserError
from girofle.home import atomic_write
from girofle.render.model import InstancePaths
from girofle.sso import registration

CA_FILE = "girofle-sso-ca.crt"


def install_provider_ca(config: GirofleConfig, name: str) -> bool:
    """Put sso.openid_connect.ca_file into the instance's trusted-certs (or take back the one
    Girofle put there when there is none any more); True when that changed anything."""
    oidc = registration.oidc_of(config, name)
    target = trusted_ca_path(config, name)
    if oidc is None or oidc.ca_file is None:
        existed = target.exists()
        target.unlink(missing_ok=True)
        return existed
    try:
        pem = oidc.ca_file.read_bytes()
    except OSError as err:
        raise UserError(f"sso.openid_connect.ca_file: {oidc.ca_file}: {err.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise UserError(f"sso.openid_connect.ca_file: {oidc.ca_file} is not a PEM certificate")
    if target.exists() and target.read_bytes() == pem:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, pem, mode=0o644)
    return True


def trusted_ca_path(config: GirofleConfig, name: str) -> Path:
    """Where the provider's CA is in the instance's config volume."""
    return InstancePaths.of(config.data_root, name).config / "trusted-certs" / CA_FILE

"""Each instance as a client of the OpenID Connect provider: registered by RFC 7591 when
it is commissioned, its redirect URIs updated by RFC 7592 when its hostnames change,
deleted when it is removed. What the provider returns is kept in the instance's secrets,
mode 0600: the client secret in its own file (mounted into the container, read by gitlab.rb
with File.read), the rest (client id, registration URI and access token) beside it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from girofle.config import GirofleConfig
from girofle.errors import SsoError, UserError
from girofle.home import Home, read_private, write_private
from girofle.inventory import Instance
from girofle.render import model
from girofle.sso import provider
from girofle.sso.settings import OidcProvider

PROVIDER = "openid_connect"
RECORD = "sso-openid_connect.json"
CLIENT_SECRET = "openid_connect_client_secret"


@dataclass(frozen=True)
class Client:
    """What gitlab.rb needs of an instance's client: its id and the file of its secret."""

    client_id: str
    secret_file: Path


def oidc_of(config: GirofleConfig, name: str) -> OidcProvider | None:
    """The OpenID Connect provider ``name`` signs in with, if any."""
    sso = config.sso
    if sso is None or sso.openid_connect is None or PROVIDER not in sso.providers(name):
        return None
    return sso.openid_connect


def callback_urls(config: GirofleConfig, instance: Instance) -> list[str]:
    """The instance's OIDC callback on each of its hostnames (the first is gitlab.rb's)."""
    return [
        url.rstrip("/") + f"/users/auth/{PROVIDER}/callback"
        for url in model.instance_urls(config, instance)
    ]


def client_of(config: GirofleConfig, home: Home, instance: Instance) -> Client | None:
    """The instance's client as registered (dynamic) or given (static); None without OIDC."""
    oidc = oidc_of(config, instance.name)
    if oidc is None:
        return None
    if oidc.registration == "dynamic":
        # Not registered yet (a dry run's plan): gitlab.rb says so instead of a client.
        record = _record(home, instance.name)
        if record is None:
            return None
        return Client(record["client_id"], home.instance_secret_file(instance.name, CLIENT_SECRET))
    override = config.sso.instances.get(instance.name) if config.sso else None
    client_id = (override and override.client_id) or oidc.client_id
    secret_file = (override and override.client_secret_file) or oidc.client_secret_file
    if client_id is None or secret_file is None:
        raise UserError(
            f"sso.openid_connect.registration is static: give client_id and client_secret_file "
            f"for {instance.name} (under sso.instances.{instance.name}, or for every instance)"
        )
    read_private(secret_file, "an OIDC client secret")
    return Client(client_id, secret_file)


def _record(home: Home, name: str) -> dict[str, Any] | None:
    path = home.instance_secret_file(name, RECORD)
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise UserError(f"{path} cannot be read: {err}") from None
    return value if isinstance(value, dict) else None


def _metadata(config: GirofleConfig, instance: Instance) -> dict[str, Any]:
    return {
        "client_name": f"GitLab {instance.name} (Girofle {config.home_id})",
        "application_type": "web",
        "redirect_uris": callback_urls(config, instance),
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }


def ensure_registered(
    config: GirofleConfig,
    home: Home,
    instance: Instance,
    progress: Callable[[str], None] = lambda message: None,
) -> bool:
    """Register the instance, or update its registration when its callbacks changed; True
    when the provider was asked to change anything. Static registration: nothing to do."""
    oidc = oidc_of(config, instance.name)
    if oidc is None or oidc.registration == "static":
        return False
    wanted = _metadata(config, instance)
    record = _record(home, instance.name)
    if record is not None and record.get("redirect_uris") == wanted["redirect_uris"]:
        return False
    if record is None:
        assert oidc.initial_access_token_file is not None  # the settings' validator's
        token = read_private(oidc.initial_access_token_file, "the initial access token")
        endpoint = provider.discover(oidc.issuer, oidc.ca_file).get("registration_endpoint")
        if not isinstance(endpoint, str):
            raise SsoError(f"the identity provider {oidc.issuer} offers no dynamic registration")
        progress(f"{instance.name}: registering with the identity provider {oidc.issuer}")
        answer = provider.call("POST", endpoint, token=token, body=wanted, ca_file=oidc.ca_file)
    else:
        progress(f"{instance.name}: updating its registration with {oidc.issuer}")
        answer = provider.call(
            "PUT",
            record["registration_client_uri"],
            token=record["registration_access_token"],
            body={"client_id": record["client_id"], **wanted},
            ca_file=oidc.ca_file,
        )
    _keep(home, instance.name, answer.body, record)
    return True


def _keep(home: Home, name: str, returned: dict[str, Any], before: dict[str, Any] | None) -> None:
    """Keep what the provider returned; the secret first, so a record never names a client
    whose secret is not on disk. A provider may rotate the access token on an update, and
    may leave the secret out of an update's answer (it is unchanged then)."""
    merged = {**(before or {}), **returned}
    secret_file = home.instance_secret_file(name, CLIENT_SECRET)
    secret = returned.get("client_secret")
    missing = [
        key for key in KEPT if key != "redirect_uris" and not isinstance(merged.get(key), str)
    ]
    if not isinstance(secret, str) and (before is None or not secret_file.exists()):
        missing.append("client_secret")
    if missing:
        raise SsoError(f"the identity provider's answer lacks {', '.join(missing)}")
    if isinstance(secret, str):
        write_private(secret_file, secret + "\n")
    kept = {key: merged[key] for key in KEPT if key in merged}
    write_private(home.instance_secret_file(name, RECORD), json.dumps(kept, indent=1) + "\n")


# What the record keeps of the provider's answer: never the secret, which has its own file.
KEPT = ("client_id", "redirect_uris", "registration_client_uri", "registration_access_token")


def deregister(
    config: GirofleConfig,
    home: Home,
    name: str,
    progress: Callable[[str], None] = lambda message: None,
) -> bool:
    """Delete the instance's client at the provider (RFC 7592) and forget it; True when
    there was one. A client the provider no longer knows counts as deleted."""
    record = _record(home, name)
    if record is None:
        return False
    oidc = config.sso.openid_connect if config.sso else None
    progress(f"{name}: deleting its client at the identity provider")
    provider.call(
        "DELETE",
        record["registration_client_uri"],
        token=record["registration_access_token"],
        ca_file=oidc.ca_file if oidc else None,
        # 401: the token died with its client (a delete a killed Girofle did not record).
        accept=(401, 404),
    )
    for file in (RECORD, CLIENT_SECRET):
        home.instance_secret_file(name, file).unlink(missing_ok=True)
    return True


def registered(home: Home, name: str) -> dict[str, Any] | None:
    """The instance's registration record (client id, URIs; never the secret), if any."""
    return _record(home, name)

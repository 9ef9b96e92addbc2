"""The OmniAuth part of an instance's gitlab.rb, as GitLab's documentation writes it
(doc/administration/auth/oidc.md, doc/integration/saml.md), and the files it reads.

Every value goes through the Ruby escaper (render.gitlab_rb.ruby_value); secrets are never
values: gitlab.rb reads them with File.read from files mounted at /run/secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import JsonValue

from girofle.config import GirofleConfig
from girofle.home import Home
from girofle.inventory import Instance
from girofle.render import model
from girofle.render.gitlab_rb import ruby_string, ruby_value
from girofle.sso import registration
from girofle.sso.settings import SamlProvider

SECRETS = "/run/secrets"
SAML_CERT = "saml_idp_cert"


@dataclass(frozen=True)
class SsoPart:
    """gitlab.rb lines, and the files mounted as /run/secrets/<name> that they read."""

    lines: list[str] = field(default_factory=list)
    secrets: dict[str, Path] = field(default_factory=dict)


def _read(name: str) -> str:
    """Ruby that reads a mounted secret (``name`` is one of this module's constants)."""
    return f"File.read({ruby_string(f'{SECRETS}/{name}')}).strip"


def _hash(pairs: dict[str, str]) -> str:
    """A Ruby hash with string keys of values already rendered as Ruby."""
    return "{" + ", ".join(f"{ruby_string(k)} => {v}" for k, v in pairs.items()) + "}"


def acs_url(config: GirofleConfig, instance: Instance) -> str:
    """The SAML assertion consumer service: the callback on the instance's external URL."""
    return model.external_url(config, instance) + "/users/auth/saml/callback"


def sp_entity_id(config: GirofleConfig, instance: Instance) -> str:
    """The instance's SAML issuer (entity ID): its external URL."""
    return model.external_url(config, instance)


def _oidc(config: GirofleConfig, home: Home, instance: Instance, part: SsoPart) -> str | None:
    oidc = registration.oidc_of(config, instance.name)
    if oidc is None:
        return None
    client = registration.client_of(config, home, instance)
    if client is None:
        part.lines.append(
            f"# openid_connect: {instance.name} is registered with {oidc.issuer} when it is "
            "commissioned or reconfigured"
        )
        return None
    part.secrets[registration.CLIENT_SECRET] = client.secret_file
    options = _hash(
        {
            "identifier": ruby_value(client.client_id),
            "secret": _read(registration.CLIENT_SECRET),
            "redirect_uri": ruby_value(registration.callback_urls(config, instance)[0]),
        }
    )
    args = {
        "name": ruby_value("openid_connect"),
        "scope": ruby_value(list(oidc.scopes)),
        "response_type": ruby_value("code"),
        "issuer": ruby_value(oidc.issuer),
        "discovery": ruby_value(oidc.discovery),
        "client_auth_method": ruby_value(oidc.client_auth_method),
        "uid_field": ruby_value(oidc.uid_field),
        "pkce": ruby_value(oidc.pkce),
        "client_options": options,
    }
    return _hash(
        {"name": ruby_value("openid_connect"), "label": ruby_value(oidc.label), "args": _hash(args)}
    )


def _saml(config: GirofleConfig, saml: SamlProvider, instance: Instance, part: SsoPart) -> str:
    args = {
        "name": ruby_value("saml"),
        "assertion_consumer_service_url": ruby_value(acs_url(config, instance)),
        "idp_sso_target_url": ruby_value(saml.idp_sso_target_url),
        "issuer": ruby_value(sp_entity_id(config, instance)),
        "name_identifier_format": ruby_value(saml.name_identifier_format),
    }
    if saml.idp_cert_file is not None:
        part.secrets[SAML_CERT] = saml.idp_cert_file
        args["idp_cert"] = _read(SAML_CERT)
    else:
        args["idp_cert_fingerprint"] = ruby_value(saml.idp_cert_fingerprint)
    if saml.attribute_statements:
        statements = {k: list(v) for k, v in saml.attribute_statements.items()}
        args["attribute_statements"] = ruby_value(statements)  # type: ignore[arg-type]
    return _hash({"name": ruby_value("saml"), "label": ruby_value(saml.label), "args": _hash(args)})


def sso_part(config: GirofleConfig, home: Home, instance: Instance) -> SsoPart:
    """What SSO adds to an instance's gitlab.rb and mounts (nothing without ``sso:``)."""
    part = SsoPart()
    sso = config.sso
    names = sso.providers(instance.name) if sso else []
    if sso is None or not names:
        return part
    providers = [_oidc(config, home, instance, part)]
    if sso.saml is not None:
        providers.append(_saml(config, sso.saml, instance, part))
    rendered = [p for p in providers if p is not None]
    every = ruby_value(list(names))
    linked: list[JsonValue] = [n for n in names if n != "saml"]
    part.lines.extend(
        [
            "gitlab_rails['omniauth_enabled'] = true",
            "gitlab_rails['omniauth_allow_single_sign_on'] = "
            + (every if sso.allow_single_sign_on else "false"),
            "gitlab_rails['omniauth_block_auto_created_users'] = "
            + ruby_value(sso.block_auto_created_users),
            # omniauth_auto_link_user does not apply to SAML, which has its own
            # omniauth_auto_link_saml_user (doc/integration/saml.md).
            "gitlab_rails['omniauth_auto_link_user'] = "
            + (ruby_value(linked) if sso.auto_link_user and linked else "false"),
            "gitlab_rails['omniauth_auto_link_saml_user'] = "
            + ruby_value(sso.auto_link_user and "saml" in names),
            "gitlab_rails['omniauth_providers'] = [" + ", ".join(rendered) + "]",
        ]
    )
    return part

"""girofle.yml `sso:`: the identity providers every instance signs in with.

Provider names are GitLab's own (``openid_connect``, ``saml``): one of each per home, with
per-instance departures under ``instances``. Secrets are never values here, only 0600 files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# http(s) URLs with a host and no credentials, whitespace or quotes (they reach gitlab.rb
# through the Ruby escaper, and HTTP requests as they are).
URL = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&()*+,;=:@%/-]*)?$"
Url = Annotated[str, Field(pattern=URL, max_length=2000)]
# SHA-1 (GitLab's documented idp_cert_fingerprint) or SHA-256, as colon-separated hex.
FINGERPRINT = re.compile(r"([0-9A-Fa-f]{2}:){19}[0-9A-Fa-f]{2}|([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}")
Token = Annotated[str, Field(pattern=r"^[A-Za-z0-9._~+/=:-]{1,200}$")]
SAML_NAME_ID = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OidcProvider(_Strict):
    """An OpenID Connect provider (GitLab's ``openid_connect`` OmniAuth strategy)."""

    label: str = Field(default="Single sign-on", min_length=1, max_length=80)
    issuer: Url
    discovery: bool = True
    scopes: list[Token] = Field(default_factory=lambda: ["openid", "profile", "email"])
    uid_field: Token = "sub"
    pkce: bool = True
    client_auth_method: Literal["basic", "jwt_bearer", "mtls"] = "basic"
    # dynamic: Girofle registers each instance (RFC 7591) with the initial access token in
    # initial_access_token_file; static: the operator gives client_id and client_secret_file
    # (here for every instance, or per instance under sso.instances).
    registration: Literal["dynamic", "static"] = "dynamic"
    initial_access_token_file: Path | None = None
    client_id: Token | None = None
    client_secret_file: Path | None = None
    # The CA that signs the provider's certificate, when it is not a public one.
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _registration_needs(self) -> OidcProvider:
        if self.registration == "dynamic" and self.initial_access_token_file is None:
            raise ValueError("registration: dynamic needs initial_access_token_file")
        if "openid" not in self.scopes:
            raise ValueError("scopes must include openid")
        # GitLab's OpenID Connect client (the openid_connect gem's discovery, through SWD)
        # fetches <issuer>/.well-known/openid-configuration over HTTPS, whatever the issuer.
        if self.discovery and not self.issuer.startswith("https://"):
            raise ValueError("discovery needs an https:// issuer (GitLab fetches it over HTTPS)")
        return self


class SamlProvider(_Strict):
    """A SAML 2.0 identity provider (GitLab's ``saml`` OmniAuth strategy)."""

    label: str = Field(default="Single sign-on (SAML)", min_length=1, max_length=80)
    idp_sso_target_url: Url
    idp_cert_fingerprint: str | None = None
    idp_cert_file: Path | None = None
    name_identifier_format: str = Field(default=SAML_NAME_ID, pattern=r"^urn:[A-Za-z0-9:._-]+$")
    # GitLab's attribute_statements: a user field (email, name, ...) to the SAML attribute
    # names that may carry it.
    attribute_statements: dict[Token, list[Token]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_certificate(self) -> SamlProvider:
        if (self.idp_cert_fingerprint is None) == (self.idp_cert_file is None):
            raise ValueError("give one of idp_cert_fingerprint or idp_cert_file")
        if self.idp_cert_fingerprint is not None and not FINGERPRINT.fullmatch(
            self.idp_cert_fingerprint
        ):
            raise ValueError(
                "idp_cert_fingerprint must be a SHA-1 or SHA-256 fingerprint as "
                "colon-separated hex (AB:CD:...)"
            )
        return self


class SsoOverride(_Strict):
    """One instance's departures: no SSO at all, or its own static client."""

    enabled: bool = True
    client_id: Token | None = None
    client_secret_file: Path | None = None


class SsoSettings(_Strict):
    """How every instance's users sign in: the providers and GitLab's OmniAuth rules."""

    openid_connect: OidcProvider | None = None
    saml: SamlProvider | None = None
    # GitLab's omniauth_allow_single_sign_on: users who sign in for the first time through a
    # provider get an account (else only users who linked one can).
    allow_single_sign_on: bool = True
    # GitLab's default: accounts made that way wait for an administrator's approval.
    block_auto_created_users: bool = True
    # Link a provider's user to an existing GitLab user with the same email.
    auto_link_user: bool = False
    # GitLab's password_authentication_enabled_for_web application setting: false leaves
    # the providers as the only way to sign in on the web (root included).
    password_sign_in: bool = True
    instances: dict[str, SsoOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _some_provider(self) -> SsoSettings:
        if self.openid_connect is None and self.saml is None:
            raise ValueError("sso needs openid_connect or saml (or remove the sso section)")
        return self

    def providers(self, name: str) -> list[str]:
        """GitLab provider names ``name`` signs in with (none when it is opted out)."""
        if not self.instances.get(name, SsoOverride()).enabled:
            return []
        return [p for p in ("openid_connect", "saml") if getattr(self, p) is not None]

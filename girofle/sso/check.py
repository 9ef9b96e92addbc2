"""`girofle sso check`: what would stop an instance's users from signing in, one line each."""

from __future__ import annotations

import time

from girofle.config import GirofleConfig
from girofle.errors import SsoError
from girofle.home import Home
from girofle.inventory import Instance
from girofle.sso import provider, registration

# How far apart the provider's clock and this host's may be: SAML assertions and ID tokens
# carry validity windows that GitLab checks against its own clock.
MAX_SKEW_SECONDS = 60.0


def _skew_problem(answer: provider.Answer, what: str) -> list[str]:
    skew = provider.clock_skew(answer, time.time())
    if skew is not None and skew > MAX_SKEW_SECONDS:
        return [
            f"{what}'s clock is {skew:.0f} s away from this host's "
            f"(at most {MAX_SKEW_SECONDS:.0f} s)"
        ]
    return []


def _oidc_problems(config: GirofleConfig, home: Home, instance: Instance) -> list[str]:
    oidc = registration.oidc_of(config, instance.name)
    if oidc is None:
        return []
    try:
        answer = provider.call("GET", provider.discovery_url(oidc.issuer), ca_file=oidc.ca_file)
    except SsoError as err:
        return [f"discovery: {err}"]
    problems = _skew_problem(answer, f"the provider {oidc.issuer}")
    mismatch = provider.issuer_mismatch(answer.body, oidc.issuer)
    if mismatch is not None:
        return [*problems, f"discovery: {mismatch}"]
    if oidc.registration == "static":
        return problems  # the provider offers no way to read a static client: not checked
    record = registration.registered(home, instance.name)
    if record is None:
        return [
            *problems,
            f"not registered with {oidc.issuer}: "
            f"`girofle reconfigure {instance.name}` registers it",
        ]
    try:
        known = provider.call(
            "GET",
            record["registration_client_uri"],
            token=record["registration_access_token"],
            ca_file=oidc.ca_file,
        ).body
    except SsoError as err:
        return [*problems, f"client {record['client_id']} unknown to the provider: {err}"]
    registered_uris = known.get("redirect_uris") or []
    problems += [
        f"callback {url} is not registered with the provider"
        for url in registration.callback_urls(config, instance)
        if url not in registered_uris
    ]
    return problems


def _saml_problems(config: GirofleConfig, instance: Instance) -> list[str]:
    sso = config.sso
    saml = sso.saml if sso else None
    if sso is None or saml is None or "saml" not in sso.providers(instance.name):
        return []
    try:
        # Without a SAMLRequest the IdP answers with an error page: it answers, that is all.
        answer = provider.call("GET", saml.idp_sso_target_url, accept=tuple(range(400, 500)))
    except SsoError as err:
        return [f"SAML IdP: {err}"]
    return _skew_problem(answer, f"the SAML IdP {saml.idp_sso_target_url}")


def problems(config: GirofleConfig, home: Home, instance: Instance) -> list[str]:
    """Everything wrong with ``instance``'s single sign-on (empty: nothing found)."""
    return _oidc_problems(config, home, instance) + _saml_problems(config, instance)

"""A login through a real SAML identity provider (samlify), its response checked by
GitLab's own ruby-saml: signed in as the IdP's user; a wrong fingerprint fails the login
with GitLab's error."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from python_on_whales import DockerClient

from tests.fleet import Fleet, instance_name
from tests.images.build import BuiltImages
from tests.sso.idp import Browser, Page, SamlIdp, instance_sites, saml_idp

pytestmark = pytest.mark.engine


@pytest.fixture
def idp(engine: DockerClient, images: BuiltImages, tmp_path: Path) -> Iterator[SamlIdp]:
    yield from saml_idp(engine, images, tmp_path)


def saml_login(browser: Browser, base: str, idp: SamlIdp, login: str) -> Page:
    """GitLab's sign-in, the IdP's login form, and the IdP's signed response posted back
    to GitLab by the browser; GitLab's answer to that post."""
    sign_in = browser.get(f"{base}/users/sign_in")
    to_idp = browser.submit(sign_in, to="/users/auth/saml")
    assert to_idp.status == 302 and to_idp.location.startswith(idp.sso_url + "?SAMLRequest="), (
        to_idp
    )
    form = browser.follow(to_idp)
    posting = browser.submit(form, login=login)
    assert posting.status == 200, posting
    return browser.submit(posting)  # the SAMLResponse, to the assertion consumer service


def test_a_saml_login_signs_in_and_a_wrong_fingerprint_fails_with_gitlabs_error(
    make_fleet: Callable[[], Fleet], idp: SamlIdp, tmp_path: Path
) -> None:
    fleet = make_fleet()
    name = instance_name("s")
    fleet.init(
        "--first-instance",
        name,
        "-c",
        f"sso.saml.idp_sso_target_url={idp.sso_url}",
        "-c",
        f"sso.saml.idp_cert_fingerprint={idp.fingerprint}",
        "-c",
        "sso.block_auto_created_users=false",
    )
    # The operator gives the IdP the service provider's metadata.
    metadata = fleet.run("sso", "metadata", name).stdout
    subprocess.run(
        ["curl", "-sSf", "-X", "PUT", "--data-binary", "@-", f"{idp.base}/sp"],
        input=metadata,
        text=True,
        check=True,
    )
    (base,), resolve = instance_sites(fleet, name)

    browser = Browser(tmp_path / "jar", [fleet.ca_file], resolve)
    answer = saml_login(browser, base, idp, "bob")
    assert answer.status == 302 and answer.location == f"{base}/", answer
    user = json.loads(browser.get(f"{base}/api/v4/user").body)
    assert (user["username"], user["email"]) == ("bob", "bob@saml.example.org")
    assert user["identities"] == [{"provider": "saml", "extern_uid": "bob"}]

    # Another certificate's fingerprint: ruby-saml refuses the response's signature.
    config_file = fleet.root / "girofle.yml"
    config = yaml.safe_load(config_file.read_text())
    config["sso"]["saml"]["idp_cert_fingerprint"] = ":".join(["AB"] * 20)
    config_file.write_text(yaml.safe_dump(config))
    fleet.run("reconfigure", name)
    other = Browser(tmp_path / "jar-eve", [fleet.ca_file], resolve)
    refused = saml_login(other, base, idp, "eve")
    assert refused.status == 302 and "/users/sign_in?alert=" in refused.location, refused
    alert = other.follow(refused).body
    assert "Could not authenticate you from Single sign-on (SAML) because" in alert, alert
    assert "Fingerprint mismatch" in alert, alert
    assert other.get(f"{base}/api/v4/user").status == 401

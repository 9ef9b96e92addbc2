"""A login through a real OpenID Connect provider, over HTTP as a browser makes it: GitLab's
sign-in page, its OmniAuth request phase, the provider's login and consent, the callback, and
the user GitLab makes of the provider's (extern_uid and email as the provider says)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from python_on_whales import DockerClient

from tests.backup.test_local_backup_restore import TOKEN, make_root_token
from tests.fleet import Fleet, instance_name
from tests.images.build import BuiltImages
from tests.sso.idp import Browser, OidcProvider, Page, forms, instance_sites, oidc_provider
from tests.sso.test_oidc_registration import sso_args

pytestmark = pytest.mark.engine
OIDC = "/users/auth/openid_connect"  # the sign-in page's form for the provider


@pytest.fixture
def provider(engine: DockerClient, images: BuiltImages, tmp_path: Path) -> Iterator[OidcProvider]:
    yield from oidc_provider(engine, images, tmp_path)


def through_the_provider(browser: Browser, page: Page, provider: OidcProvider, login: str) -> Page:
    """From GitLab's redirect to the provider, to the provider's redirect back: its login
    form (the development forms of oidc-provider take any password) and consent."""
    assert page.status in (302, 303) and page.location.startswith(provider.issuer + "/auth"), page
    page = browser.follow(page)
    page = browser.submit(page, login=login, password="any")
    page = browser.follow_while(page, provider.issuer)
    if page.status == 200:  # consent
        page = browser.submit(page, prompt="consent")
        page = browser.follow_while(page, provider.issuer)
    return page


def signing_in_fleet(
    make_fleet: Callable[[], Fleet], provider: OidcProvider, prefix: str
) -> tuple[Fleet, str]:
    """A home whose first instance signs in through ``provider``, accounts made by a first
    sign-in active at once."""
    fleet = make_fleet()
    name = instance_name(prefix)
    fleet.init(
        "--first-instance", name, *sso_args(provider), "-c", "sso.block_auto_created_users=false"
    )
    return fleet, name


def root_password(fleet: Fleet, name: str) -> str:
    return (fleet.root / "secrets" / "instances" / name / "root_password").read_text().strip()


def test_a_login_through_the_provider_ends_signed_in_as_its_user(
    make_fleet: Callable[[], Fleet], provider: OidcProvider, tmp_path: Path
) -> None:
    fleet, name = signing_in_fleet(make_fleet, provider, "l")
    (base,), resolve = instance_sites(fleet, name)
    browser = Browser(tmp_path / "jar", [fleet.ca_file, provider.ca_file], resolve)

    sign_in = browser.get(f"{base}/users/sign_in")
    assert sign_in.status == 200 and "/users/auth/openid_connect" in sign_in.body
    back = through_the_provider(browser, browser.submit(sign_in, to=OIDC), provider, "alice")
    assert back.location.startswith(f"{base}/users/auth/openid_connect/callback?code="), back
    signed_in = browser.get(back.location)
    assert signed_in.status == 302 and signed_in.location == f"{base}/", signed_in

    me = browser.get(f"{base}/api/v4/user")
    assert me.status == 200, me
    user = json.loads(me.body)
    assert (user["username"], user["email"], user["state"]) == (
        "alice",
        "alice@idp.example.org",
        "active",
    )
    assert user["identities"] == [{"provider": "openid_connect", "extern_uid": "alice"}]

    # As an administrator sees it (doc/api/users.md: extern_uid and provider).
    make_root_token(name)
    found = browser.get(
        f"{base}/api/v4/users?extern_uid=alice&provider=openid_connect",
        headers={"PRIVATE-TOKEN": TOKEN},
    )
    assert [u["username"] for u in json.loads(found.body)] == ["alice"]

    # Password sign-in stays on by default (sso.password_sign_in): root signs in with its.
    root = Browser(tmp_path / "jar-root", browser.cas, browser.resolve)
    password = root_password(fleet, name)
    signed = root.submit(
        root.get(f"{base}/users/sign_in"), **{"user[login]": "root", "user[password]": password}
    )
    assert signed.status == 302 and signed.location == f"{base}/", signed
    assert json.loads(root.get(f"{base}/api/v4/user").body)["username"] == "root"

    # A second login finds the same user by its identity.
    again = Browser(tmp_path / "jar2", browser.cas, browser.resolve)
    back = through_the_provider(
        again, again.submit(again.get(f"{base}/users/sign_in"), to=OIDC), provider, "alice"
    )
    assert again.get(back.location).status == 302
    assert json.loads(again.get(f"{base}/api/v4/user").body)["id"] == user["id"]


def test_a_login_begun_on_a_second_hostname_and_gitlabs_approval_rule(
    make_fleet: Callable[[], Fleet], provider: OidcProvider, tmp_path: Path
) -> None:
    fleet, name = signing_in_fleet(make_fleet, provider, "h")
    fleet.run("project", "add", name, "docs")
    (base, docs), resolve = instance_sites(fleet, name)

    # Begun on the second hostname: sent to the external URL's sign-in, whose callback the
    # provider returns to with the session the login began with.
    browser = Browser(tmp_path / "jar", [fleet.ca_file, provider.ca_file], resolve)
    begun = browser.get(f"{docs}/users/sign_in")
    assert begun.status in (302, 307) and begun.location == f"{base}/users/sign_in", begun
    back = through_the_provider(
        browser, browser.submit(browser.follow(begun), to=OIDC), provider, "carol"
    )
    assert browser.get(back.location).status == 302
    assert json.loads(browser.get(f"{base}/api/v4/user").body)["username"] == "carol"

    # GitLab's default: an account made by a first sign-in waits for an administrator. And
    # password sign-in off: the providers are the only way in on the web, root's included.
    config_file = fleet.root / "girofle.yml"
    config = yaml.safe_load(config_file.read_text())
    del config["sso"]["block_auto_created_users"]
    config["sso"]["password_sign_in"] = False
    config_file.write_text(yaml.safe_dump(config))
    fleet.run("reconfigure", name)
    root = Browser(tmp_path / "jar-root", browser.cas, resolve)
    page = root.get(f"{base}/users/sign_in")
    assert "user[password]" not in page.body
    token = forms(page)[0][2]["authenticity_token"]
    refused = root.request(
        "POST",
        f"{base}/users/sign_in",
        {
            "authenticity_token": token,
            "user[login]": "root",
            "user[password]": root_password(fleet, name),
        },
    )
    assert refused.status == 302 and "Invalid+login+or+password" in refused.location, refused
    dave = Browser(tmp_path / "jar-dave", browser.cas, resolve)
    back = through_the_provider(
        dave, dave.submit(dave.get(f"{base}/users/sign_in"), to=OIDC), provider, "dave"
    )
    refused = dave.get(back.location)
    assert refused.status == 302 and "pending+approval" in refused.location, refused
    assert dave.get(f"{base}/api/v4/user").status == 401

    # A malformed SAML fingerprint: one line, exit 2, the instance unchanged and running.
    gitlab_rb = (fleet.root / "stacks" / name / "gitlab.rb").read_text()
    config["sso"]["saml"] = {
        "idp_sso_target_url": f"{provider.issuer}/saml",
        "idp_cert_fingerprint": "AB:CD:not-hex",
    }
    config_file.write_text(yaml.safe_dump(config))
    proc = fleet.run("reconfigure", name, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc
    assert "sso.saml" in proc.stderr and "idp_cert_fingerprint" in proc.stderr
    assert (fleet.root / "stacks" / name / "gitlab.rb").read_text() == gitlab_rb
    assert fleet.inventory()["instances"][name]["state"] == "running"

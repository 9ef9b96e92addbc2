"""SSO settings, gitlab.rb's OmniAuth block and the SAML metadata, without an engine."""

from __future__ import annotations

import datetime as dt
import json
import sys
import xml.etree.ElementTree as ET
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from girofle.config import GirofleConfig
from girofle.errors import UserError
from girofle.home import Home, write_private
from girofle.inventory import Endpoint, Instance
from girofle.lifecycle import validate
from girofle.render.compose import render_instance
from girofle.render.model import InstanceSpec
from girofle.sso import registration
from girofle.sso.metadata import sp_metadata

sys.path.insert(0, str(Path(__file__).parents[1] / "images" / "gitlab-standin"))
from standin.common import ConfigError, parse_ruby_config

FINGERPRINT = ":".join(["AB"] * 20)


def config(tmp_path: Path, sso: dict[str, Any], **more: Any) -> GirofleConfig:
    return GirofleConfig.model_validate(
        {
            "home_id": "g1234",
            "data_root": str(tmp_path / "data"),
            "addresses": ["127.0.0.1"],
            "backups": {"scheduler": "none"},
            "sso": sso,
            **more,
        }
    )


def oidc(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    return {
        "issuer": "https://idp.example.org",
        "initial_access_token_file": str(tmp_path / "token"),
        **changes,
    }


def instance(name: str = "alpha") -> Instance:
    local = IPv4Address("127.0.0.1")
    return Instance(
        name=name,
        state="creating",
        image="gitlab/gitlab-ce:18.11.11-ce.0",
        address=local,
        projects=["web", "api"],
        ssh=Endpoint(address=local, port=2222),
        subnet=IPv4Network("10.213.0.16/28"),
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


def registered(home: Home, name: str, client_id: str = "client-1") -> None:
    write_private(home.instance_secret_file(name, registration.CLIENT_SECRET), "s3cret\n")
    record = {
        "client_id": client_id,
        "redirect_uris": [],
        "registration_client_uri": "https://idp.example.org/reg/x",
        "registration_access_token": "t",
    }
    write_private(home.instance_secret_file(name, registration.RECORD), json.dumps(record))


@pytest.mark.parametrize(
    ("sso", "key"),
    [
        ({}, "sso"),
        ({"openid_connect": {"issuer": "https://idp.example.org"}}, "sso.openid_connect"),
        ({"openid_connect": {"issuer": "ftp://idp", "registration": "static"}}, "issuer"),
        (
            {
                "openid_connect": {
                    "issuer": "https://x",
                    "registration": "static",
                    "scopes": ["email"],
                }
            },
            "sso.openid_connect",
        ),
        (
            {"openid_connect": {"issuer": "http://idp", "initial_access_token_file": "/t"}},
            "sso.openid_connect",
        ),
        ({"saml": {"idp_sso_target_url": "https://idp/sso"}}, "sso.saml"),
        (
            {"saml": {"idp_sso_target_url": "https://idp/sso", "idp_cert_fingerprint": "AB:CD"}},
            "sso.saml",
        ),
        (
            {"openid_connect": {"issuer": "https://idp/'; system('x')", "registration": "static"}},
            "issuer",
        ),
    ],
)
def test_bad_sso_settings_name_their_key(tmp_path: Path, sso: dict[str, Any], key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        config(tmp_path, sso)
    assert key in ".".join(str(p) for p in caught.value.errors()[0]["loc"])


def test_sso_is_refused_on_a_swarm_for_now(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not available with target: swarm"):
        config(tmp_path, {"openid_connect": oidc(tmp_path)}, target="swarm")


def test_gitlab_rb_has_the_providers_as_gitlabs_documentation_writes_them(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    settings = config(
        tmp_path,
        {
            "openid_connect": oidc(tmp_path, label="It's SSO"),
            "saml": {
                "idp_sso_target_url": "https://idp.example.org/sso",
                "idp_cert_fingerprint": FINGERPRINT,
            },
        },
    )
    registered(home, "alpha")
    files = render_instance(InstanceSpec(settings, home, instance(), ()))
    gitlab_rb = files["gitlab.rb"].decode()
    assert "s3cret" not in b"".join(files.values()).decode()
    assert "gitlab_rails['omniauth_allow_single_sign_on'] = ['openid_connect', 'saml']" in gitlab_rb
    assert "gitlab_rails['omniauth_block_auto_created_users'] = true" in gitlab_rb
    # The Ruby escaper: the quote in the label cannot end the string.
    assert "'label' => 'It\\'s SSO'" in gitlab_rb
    # Evaluated the way gitlab.rb is (the stand-in's strict reader), the secret read from
    # the file mounted at /run/secrets.
    mounted = tmp_path / "run-secrets"
    mounted.mkdir()
    (mounted / "openid_connect_client_secret").write_text("s3cret\n")
    (mounted / "gitlab_root_password").write_text("root\n")
    evaluated: dict[str, Any] = {}
    parse_ruby_config(gitlab_rb.replace("/run/secrets", str(mounted)), evaluated, "gitlab.rb")
    oidc_entry, saml_entry = evaluated["gitlab_rails"]["omniauth_providers"]
    assert oidc_entry["label"] == "It's SSO"
    options = oidc_entry["args"]["client_options"]
    assert options == {
        "identifier": "client-1",
        "secret": "s3cret",
        "redirect_uri": "https://web.scm.alpha.kytes.io/users/auth/openid_connect/callback",
    }
    assert oidc_entry["args"]["scope"] == ["openid", "profile", "email"]
    assert saml_entry["args"]["assertion_consumer_service_url"] == (
        "https://web.scm.alpha.kytes.io/users/auth/saml/callback"
    )
    assert saml_entry["args"]["idp_cert_fingerprint"] == FINGERPRINT
    # The secret is mounted from its 0600 file, never written into the Compose file.
    compose = yaml.safe_load(files["docker-compose.yml"])
    assert "openid_connect_client_secret" in compose["services"]["gitlab"]["secrets"]
    assert compose["secrets"]["openid_connect_client_secret"]["file"] == str(
        home.instance_secret_file("alpha", registration.CLIENT_SECRET)
    )


def test_auto_link_takes_saml_through_its_own_setting(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    registered(home, "alpha")
    saml = {"idp_sso_target_url": "https://idp/sso", "idp_cert_fingerprint": FINGERPRINT}
    settings = config(
        tmp_path, {"openid_connect": oidc(tmp_path), "saml": saml, "auto_link_user": True}
    )
    gitlab_rb = render_instance(InstanceSpec(settings, home, instance(), ()))["gitlab.rb"].decode()
    assert "gitlab_rails['omniauth_auto_link_user'] = ['openid_connect']" in gitlab_rb
    assert "gitlab_rails['omniauth_auto_link_saml_user'] = true" in gitlab_rb
    only_saml = render_instance(
        InstanceSpec(config(tmp_path, {"saml": saml}), home, instance(), ())
    )["gitlab.rb"].decode()
    assert "gitlab_rails['omniauth_auto_link_user'] = false" in only_saml
    assert "gitlab_rails['omniauth_auto_link_saml_user'] = false" in only_saml


def test_a_missing_secret_file_fails_gitlabs_evaluation(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    registered(home, "alpha")
    settings = config(tmp_path, {"openid_connect": oidc(tmp_path)})
    gitlab_rb = render_instance(InstanceSpec(settings, home, instance(), ()))["gitlab.rb"].decode()
    mounted = tmp_path / "run-secrets"  # the root password only
    mounted.mkdir()
    (mounted / "gitlab_root_password").write_text("root\n")
    with pytest.raises(ConfigError, match=r"No such file.*openid_connect_client_secret"):
        parse_ruby_config(gitlab_rb.replace("/run/secrets", str(mounted)), {}, "x")


def test_an_instance_not_registered_yet_renders_a_comment_not_a_client(tmp_path: Path) -> None:
    settings = config(tmp_path, {"openid_connect": oidc(tmp_path)})
    files = render_instance(InstanceSpec(settings, Home(tmp_path / "home"), instance(), ()))
    gitlab_rb = files["gitlab.rb"].decode()
    assert "# openid_connect: alpha is registered with https://idp.example.org" in gitlab_rb
    assert "omniauth_providers'] = []" in gitlab_rb
    assert "secrets" not in yaml.safe_load(files["docker-compose.yml"])["services"]["gitlab"] or (
        "openid_connect_client_secret"
        not in yaml.safe_load(files["docker-compose.yml"])["services"]["gitlab"]["secrets"]
    )


def test_an_opted_out_instance_has_no_sso(tmp_path: Path) -> None:
    settings = config(
        tmp_path, {"openid_connect": oidc(tmp_path), "instances": {"alpha": {"enabled": False}}}
    )
    gitlab_rb = render_instance(InstanceSpec(settings, Home(tmp_path / "home"), instance(), ()))
    assert b"omniauth" not in gitlab_rb["gitlab.rb"]


def test_the_omniauth_keys_sso_owns_are_refused_to_set(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="sso"):
        validate.settings(validate.SettingPairs(json=("gitlab_rails.omniauth_providers=[]",)))


def test_saml_metadata_names_the_instance_and_its_callback(tmp_path: Path) -> None:
    settings = config(
        tmp_path,
        {
            "saml": {
                "idp_sso_target_url": "https://idp.example.org/sso",
                "idp_cert_fingerprint": FINGERPRINT,
            }
        },
    )
    root = ET.fromstring(sp_metadata(settings, instance()))
    md = "{urn:oasis:names:tc:SAML:2.0:metadata}"
    assert root.tag == f"{md}EntityDescriptor"
    assert root.attrib["entityID"] == "https://web.scm.alpha.kytes.io"
    acs = root.find(f"{md}SPSSODescriptor/{md}AssertionConsumerService")
    assert acs is not None
    assert acs.attrib["Location"] == "https://web.scm.alpha.kytes.io/users/auth/saml/callback"


def test_a_static_client_is_the_operators_per_instance_and_its_secret_file_is_checked(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "alpha-secret"
    secret.write_text("from-the-idp-admin\n")
    secret.chmod(0o600)
    sso = {
        "openid_connect": {"issuer": "https://idp.example.org", "registration": "static"},
        "instances": {"alpha": {"client_id": "gitlab-alpha", "client_secret_file": str(secret)}},
    }
    home = Home(tmp_path / "home")
    files = render_instance(InstanceSpec(config(tmp_path, sso), home, instance(), ()))
    assert "'identifier' => 'gitlab-alpha'" in files["gitlab.rb"].decode()
    compose = yaml.safe_load(files["docker-compose.yml"])
    assert compose["secrets"]["openid_connect_client_secret"]["file"] == str(secret)
    assert b"from-the-idp-admin" not in b"".join(files.values())
    # Nothing registers a static client with the provider.
    assert not registration.ensure_registered(config(tmp_path, sso), home, instance())

    secret.chmod(0o644)
    with pytest.raises(UserError, match="must be mode 0600"):
        render_instance(InstanceSpec(config(tmp_path, sso), home, instance(), ()))
    del sso["instances"]
    with pytest.raises(UserError, match="give client_id and client_secret_file for alpha"):
        render_instance(InstanceSpec(config(tmp_path, sso), home, instance(), ()))


def test_a_saml_certificate_file_is_mounted_and_read_not_copied(tmp_path: Path) -> None:
    certificate = tmp_path / "idp.pem"
    certificate.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    sso = {"saml": {"idp_sso_target_url": "https://idp/sso", "idp_cert_file": str(certificate)}}
    files = render_instance(
        InstanceSpec(config(tmp_path, sso), Home(tmp_path / "home"), instance(), ())
    )
    assert (
        "'idp_cert' => File.read('/run/secrets/saml_idp_cert').strip" in files["gitlab.rb"].decode()
    )
    compose = yaml.safe_load(files["docker-compose.yml"])
    assert compose["secrets"]["saml_idp_cert"]["file"] == str(certificate)

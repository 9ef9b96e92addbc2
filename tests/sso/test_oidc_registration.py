"""Each instance registered with a real OpenID Connect provider (npm's oidc-provider):
by RFC 7591 at new-stack, updated by RFC 7592 when its hostnames change, deleted at rm;
its secret only ever in 0600 files; a provider that refuses or does not answer is one line."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from python_on_whales import DockerClient

from tests.fleet import Fleet, free_port, instance_name
from tests.images.build import BuiltImages
from tests.sso.idp import OidcProvider, instance_sites, oidc_provider

pytestmark = pytest.mark.engine


@pytest.fixture
def provider(engine: DockerClient, images: BuiltImages, tmp_path: Path) -> Iterator[OidcProvider]:
    yield from oidc_provider(engine, images, tmp_path)


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def read_client(record: dict[str, Any], ca: Path) -> tuple[int, dict[str, Any]]:
    """What the provider says of a client (RFC 7592 read), with the instance's token."""
    request = urllib.request.Request(
        record["registration_client_uri"],
        headers={"Authorization": f"Bearer {record['registration_access_token']}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5, context=trusting(ca)) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, {}


def change_client(record: dict[str, Any], ca: Path, **changes: Any) -> str:
    """Update a client at the provider as its administrator might (RFC 7592 PUT); the
    provider's new registration access token."""
    status, client = read_client(record, ca)
    assert status == 200
    body = {
        k: v
        for k, v in client.items()
        if k
        not in (
            "registration_access_token",
            "registration_client_uri",
            "client_id_issued_at",
            "client_secret_expires_at",
        )
    }
    request = urllib.request.Request(
        record["registration_client_uri"],
        data=json.dumps({**body, **changes}).encode(),
        method="PUT",
        headers={
            "Authorization": f"Bearer {record['registration_access_token']}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=5, context=trusting(ca)) as response:
        return json.loads(response.read())["registration_access_token"]  # type: ignore[no-any-return]


def registration_record_after(record: dict[str, Any], token: str) -> dict[str, Any]:
    return {**record, "registration_access_token": token}


def callbacks(fleet: Fleet, name: str) -> list[str]:
    """The OIDC callback on each of the instance's URLs, as `girofle ls` gives them."""
    return [base + "/users/auth/openid_connect/callback" for base in instance_sites(fleet, name)[0]]


def registration_record(fleet: Fleet, name: str) -> dict[str, Any]:
    path = fleet.root / "secrets" / "instances" / name / "sso-openid_connect.json"
    assert path.stat().st_mode & 0o777 == 0o600
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def sso_args(provider: OidcProvider) -> tuple[str, ...]:
    return (
        "-c",
        f"sso.openid_connect.issuer={provider.issuer}",
        "-c",
        f"sso.openid_connect.initial_access_token_file={provider.token_file}",
        "-c",
        f"sso.openid_connect.ca_file={provider.ca_file}",
    )


def everything_said_and_shown(fleet: Fleet, engine: DockerClient, name: str, said: str) -> str:
    """Every place a secret must not be: rendered files, the inventory, the output of the
    commands, the engine's view of the containers, the processes' command lines."""
    files = [p for p in (fleet.root / "stacks").rglob("*") if p.is_file()]
    files.append(fleet.root / "inventory.json")
    # GitLab's own logs (the stand-in's applied configuration among them).
    logs = fleet.data_root / f"noeud-gitlab-{name}" / "mapping-volumes" / "log"
    files += [p for p in logs.rglob("*") if p.is_file()]
    assert any(p.name == "applied-config.json" for p in files)
    shown = [said, *(p.read_text(errors="replace") for p in files)]
    containers = engine.container.list(all=True, filters=[("label", f"io.girofle.instance={name}")])
    assert containers
    inspect = ["docker", "inspect", *(c.id for c in containers)]
    shown.append(subprocess.run(inspect, capture_output=True, text=True, check=True).stdout)
    shown.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)
    return "\n".join(shown)


def test_an_instance_is_registered_updated_and_deleted_with_the_provider(
    make_fleet: Callable[[], Fleet], engine: DockerClient, provider: OidcProvider
) -> None:
    fleet = make_fleet()
    name = instance_name("o")
    said = fleet.init("--first-instance", name, *sso_args(provider)).stderr
    record = registration_record(fleet, name)
    status, client = read_client(record, provider.ca_file)
    assert status == 200 and client["client_id"] == record["client_id"]
    assert client["redirect_uris"] == callbacks(fleet, name)
    secret_file = fleet.root / "secrets" / "instances" / name / "openid_connect_client_secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    secret = secret_file.read_text().strip()
    assert secret == client["client_secret"]

    # gitlab.rb names the client and reads the secret; GitLab's reconfigure evaluated it.
    gitlab_rb = (fleet.root / "stacks" / name / "gitlab.rb").read_text()
    assert f"'identifier' => '{record['client_id']}'" in gitlab_rb
    assert "File.read('/run/secrets/openid_connect_client_secret').strip" in gitlab_rb
    mounted = engine.container.execute(
        f"gitlab-{name}", ["cat", "/run/secrets/openid_connect_client_secret"]
    )
    assert mounted.strip() == secret
    assert fleet.inventory()["instances"][name]["state"] == "running"

    # A second hostname: its callback is registered too (the token rotates on an update).
    said += fleet.run("project", "add", name, "docs").stderr
    updated = registration_record(fleet, name)
    status, client = read_client(updated, provider.ca_file)
    assert status == 200 and client["client_id"] == record["client_id"]
    assert client["redirect_uris"] == callbacks(fleet, name)
    assert len(client["redirect_uris"]) == 2 and "//docs." in client["redirect_uris"][1]
    assert read_client(record, provider.ca_file)[0] == 401  # the old token died with the update

    checked = fleet.run("sso", "check", name)
    assert checked.stdout.strip() == f"{name}: ok"
    assert secret not in everything_said_and_shown(fleet, engine, name, said + checked.stderr)

    # sso check names what would stop a login, one line each, and exits 9.
    config_file = fleet.root / "girofle.yml"
    good = config_file.read_text()
    for issuer, expected in (
        (provider.issuer + "/", "names issuer"),
        (f"https://127.0.0.1:{free_port()}", "does not answer"),
    ):
        config_file.write_text(good.replace(provider.issuer, issuer))
        proc = fleet.run("sso", "check", name, check=False)
        assert proc.returncode == 9 and expected in proc.stdout, proc
        assert len(proc.stdout.strip().splitlines()) == 1
    config_file.write_text(good)
    # The provider's administrator takes the second callback off the client.
    first_only = change_client(updated, provider.ca_file, redirect_uris=client["redirect_uris"][:1])
    (fleet.root / "secrets" / "instances" / name / "sso-openid_connect.json").write_text(
        json.dumps({**updated, "registration_access_token": first_only})
    )
    proc = fleet.run("sso", "check", name, check=False)
    assert proc.returncode == 9, proc
    assert proc.stdout.strip() == (
        f"{name}: callback {client['redirect_uris'][1]} is not registered with the provider"
    )

    # A provider that does not answer (frozen) stops rm before anything is removed.
    engine.container.pause(provider.container)
    try:
        proc = fleet.run("rm", name, "--no-backup", check=False)
    finally:
        engine.container.unpause(provider.container)
    assert proc.returncode == 9 and "nothing of" in proc.stderr, proc
    assert fleet.inventory()["instances"][name]["state"] == "running"
    assert engine.container.inspect(f"gitlab-{name}").state.running

    # rm deletes the client at the provider and forgets it.
    fleet.run("rm", name, "--no-backup")
    assert read_client(registration_record_after(updated, first_only), provider.ca_file)[0] in (
        401,
        404,
    )
    assert not secret_file.exists()
    assert not (fleet.root / "secrets" / "instances" / name / "sso-openid_connect.json").exists()


def test_a_provider_that_refuses_or_does_not_answer_is_one_line_and_leaves_nothing(
    make_fleet: Callable[[], Fleet], engine: DockerClient, provider: OidcProvider
) -> None:
    fleet = make_fleet()
    fleet.init("--no-first-instance", *sso_args(provider))
    config_file = fleet.root / "girofle.yml"
    good = config_file.read_text()

    def with_oidc(**changes: str) -> None:
        config = yaml.safe_load(good)
        config["sso"]["openid_connect"].update(changes)
        config_file.write_text(yaml.safe_dump(config))

    inventory = fleet.root / "inventory.json"

    def refused(name: str, expected: str) -> None:
        before = inventory.read_bytes() if inventory.exists() else None
        proc = fleet.run("new-stack", name, check=False)
        assert proc.returncode == 9, proc.stderr
        # Progress, then the one line that says what is wrong; no traceback.
        (error,) = [line for line in proc.stderr.splitlines() if line.startswith("girofle: ")]
        assert expected in error and "Traceback" not in proc.stderr
        assert (inventory.read_bytes() if inventory.exists() else None) == before
        assert not engine.container.exists(f"gitlab-{name}")
        assert not (
            fleet.root / "secrets" / "instances" / name / "sso-openid_connect.json"
        ).exists()

    # A wrong initial access token: the provider refuses the registration.
    wrong = fleet.root / "wrong-token"
    wrong.write_text("not-the-token\n")
    wrong.chmod(0o600)
    with_oidc(initial_access_token_file=str(wrong))
    refused(instance_name("r"), "refused POST")

    # Another issuer than the one the provider says it is.
    with_oidc(issuer=provider.issuer + "/elsewhere")
    refused(instance_name("w"), "refused GET")

    # The provider stopped: it does not answer.
    config_file.write_text(good)
    name = instance_name("d")
    engine.container.stop(provider.container)
    refused(name, "does not answer")

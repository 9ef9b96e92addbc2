"""girofle.yml: strict, with errors that name the dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest

from girofle.config import GirofleConfig, dump_config, load_config
from girofle.errors import UserError

VALID = "home_id: g1234\ndata_root: /srv/girofle\naddresses: [10.0.0.5]\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "girofle.yml"
    path.write_text(text)
    return path


def test_defaults_name_the_real_images(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.gitlab.image == "gitlab/gitlab-ce:18.11.11-ce.0"
    assert config.traefik.image.startswith("traefik:v3.")
    assert config.routing == "traefik" and config.domain == "kytes.io"
    assert config.gitlab.healthcheck.start_period == "10m"


def test_round_trip_is_byte_identical(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    once = dump_config(config)
    assert dump_config(GirofleConfig.model_validate(load_config(write(tmp_path, once)))) == once


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("gitlab:\n  imagee: x\n", "gitlab.imagee: unknown key"),
        ("gitlab:\n  healthcheck:\n    interval: soon\n", "gitlab.healthcheck.interval"),
        ("routing: nginx\n", "routing: Input should be 'traefik' or 'ports'"),
        ("backups:\n  schedule: hourly\n", "backups.schedule: Value error, 'hourly' is not a cron"),
        (
            "backups:\n  instances:\n    a:\n      schedule: '61 * * * *'\n",
            "backups.instances.a.schedule: Value error",
        ),
        (
            "ssh_ports: {first: 3000, last: 2000}\n",
            "ssh_ports: Value error, last must not be below first",
        ),
        ("hostname_pattern: '{instance}.x'\n", "hostname_pattern"),
        ("traefik:\n  http_port: 70000\n", "traefik.http_port"),
        # Values that reach a Traefik rule, a Dockerfile or the engine (issue 10).
        ("domain: 'kytes.io`) || Host(`evil.com'\n", "domain: String should match"),
        ("gitlab:\n  default_project: 'a`)'\n", "gitlab.default_project"),
        ('tools:\n  base_image: "debian\\nRUN id"\n', "tools.base_image"),
        ("gitlab:\n  image: 'gitlab/gitlab-ce:18.11 --privileged'\n", "gitlab.image"),
        ("hostname_pattern: '{project}.{instance}.{x.y}'\n", "hostname_pattern"),
        ("hostname_pattern: '{project}_{instance}.x'\n", "does not make a DNS name"),
        ("hostname_pattern: '{project!r}.{instance}'\n", "hostname_pattern"),
        ("traefik:\n  http_port: 8443\n  https_port: 8443\n", "must differ"),
        ("instance_networks:\n  pool: 127.0.0.0/8\n", "not a private range"),
        ("instance_networks:\n  pool: 0.0.0.0/0\n", "not a private range"),
        ("gitlab:\n  health_timeout: .inf\n", "gitlab.health_timeout"),
    ],
)
def test_a_bad_value_is_named_by_its_dotted_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(UserError, match=r"girofle\.yml: ") as err:
        load_config(write(tmp_path, VALID + extra))
    assert message in str(err.value)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"line 2 is not valid YAML"):
        load_config(write(tmp_path, "home_id: g1234\n  : : [\n"))


def test_missing_file_says_to_init(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="girofle init"):
        load_config(tmp_path / "girofle.yml")


def test_an_instance_override_changes_only_what_it_sets(tmp_path: Path) -> None:
    text = VALID + (
        "backups:\n  keep_last: 3\n  instances:\n    a:\n      schedule: '* * * * *'\n"
        "      push: false\n"
    )
    backups = load_config(write(tmp_path, text)).backups
    a, b = backups.policy("a"), backups.policy("b")
    assert (a.schedule, a.keep_last, a.push) == ("* * * * *", 3, False)
    assert (b.schedule, b.keep_last, b.push) == ("0 */4 * * *", 3, True)


def test_data_root_must_be_absolute(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data_root: Value error, must be an absolute path"):
        load_config(write(tmp_path, VALID.replace("/srv/girofle", "data")))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"home_id: \xff\xfe\n", "byte 9 is not UTF-8"),
        (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "girofle.yml"),
        (None, "cannot be read"),  # a directory where the file belongs
    ],
)
def test_an_unreadable_girofle_yml_is_one_line(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "girofle.yml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_config(path)

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

"""Pure units: the rules Girofle follows because the real GitLab image has them."""

from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path

import pytest

from girofle.backup.instance import require_secrets
from girofle.backup.restore import doctor_failures
from girofle.config import GitlabSettings
from girofle.errors import BackupError, UserError
from girofle.inventory import INVENTORY_VERSION, Inventory
from girofle.lifecycle import validate
from girofle.lifecycle.validate import SettingPairs
from girofle.memory import GIB, budget, puma_workers
from girofle.render.gitlab_rb import known_roots, ruby_value

# What gitlab:doctor:secrets prints (lib/gitlab/doctor/secrets.rb), good and bad.
DOCTOR_OK = """I, [2026-11-27T10:00:00 #1]  INFO -- : Checking encrypted values in the database
I, [2026-11-27T10:00:01 #1]  INFO -- : - ApplicationSetting failures: 0
I, [2026-11-27T10:00:01 #1]  INFO -- : - Ci::Variable failures: 0
I, [2026-11-27T10:00:01 #1]  INFO -- : Total: 0 row(s) affected
I, [2026-11-27T10:00:01 #1]  INFO -- : Done!
"""


def test_doctor_output_is_the_verdict() -> None:
    assert doctor_failures(DOCTOR_OK) == []
    bad = DOCTOR_OK.replace("Ci::Variable failures: 0", "Ci::Variable failures: 12")
    assert doctor_failures(bad.replace("Total: 0", "Total: 12")) == ["Ci::Variable: 12"]
    assert doctor_failures(DOCTOR_OK.replace("Total: 0", "Total: 3")) == ["Total: 3 row(s)"]
    cut = DOCTOR_OK.split("Total")[0]  # the task died before its summary
    assert doctor_failures(cut) == ["no 'Total: N row(s) affected' line"]


def test_set_keys_follow_gitlab_rb_template() -> None:
    assert {"gitlab_rails", "nginx", "puma", "sidekiq", "postgresql"} <= known_roots()
    assert "gitlab_rail" not in known_roots()
    assert validate.settings(SettingPairs(("gitlab_rails.time_zone=UTC",))) == {
        "gitlab_rails.time_zone": "UTC"
    }
    # A path to a secret is no secret.
    path = "gitlab_rails.incoming_email_secret_file=/etc/gitlab/mail"
    assert validate.settings(SettingPairs((path,))) == {
        "gitlab_rails.incoming_email_secret_file": "/etc/gitlab/mail"
    }
    for pair, says in (
        ("gitlab_rail.time_zone=UTC", "has no 'gitlab_rail'"),
        ("sleep.x=1", "has no 'sleep'"),
        ("nginx.real_ip_header=X", "proxy network"),
        ("gitlab_rails.gitlab_shell_ssh_port=22", "ssh_ports"),
        ("letsencrypt.contact_emails=x", "tls.mode: acme"),
        ("gitlab_rails.time_zone\n=UTC", "use KEY=VALUE"),
        ("gitlab_rails.time_zone=a\nb", "a value is one line"),
        ("gitlab_rails.db_password=hunter2", "secrets never go through --set"),
        ("gitlab_rails.smtp_password=x", "secrets never go through --set"),
        ("gitlab_rails.otp_key_base=x", "secrets never go through --set"),
    ):
        with pytest.raises(UserError, match=re.escape(says)):
            validate.settings(SettingPairs((pair,)))


@pytest.mark.parametrize(
    ("value", "ruby"),
    [
        ("10", "10"),
        ("-3", "-3"),
        ("010", "'010'"),
        ("08", "'08'"),
        ("²", "'²'"),
        ("true", "true"),
        ("nil", "'nil'"),  # nil, like every other type, comes with --set-json
        ("0x10", "'0x10'"),
        ("it's", "'it\\'s'"),
        ("a\\", "'a\\\\'"),
    ],
)
def test_set_values_become_ruby_literals_without_surprises(value: str, ruby: str) -> None:
    key = "gitlab_rails.x"
    typed = validate.settings(SettingPairs((f"{key}={value}",)))[key]
    assert ruby_value(typed) == ruby


@pytest.mark.parametrize(
    ("text", "ruby"),
    [
        ("null", "nil"),
        ('"010"', "'010'"),
        ('[1, "a", true]', "[1, 'a', true]"),
        ('{"k": {"n": 1.5}}', "{'k' => {'n' => 1.5}}"),
        ('"x\'; system(1) #"', "'x\\'; system(1) #'"),
    ],
)
def test_set_json_values_become_ruby_literals(text: str, ruby: str) -> None:
    key = "gitlab_rails.x"
    typed = validate.settings(SettingPairs(json=(f"{key}={text}",)))[key]
    assert ruby_value(typed) == ruby


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("NaN", "not a number GitLab can use"),
        ("[1,", "not usable JSON"),
        ('"a\\nb"', "control character"),
        ("[" * 12 + "]" * 12, "deeper than 8"),
    ],
)
def test_set_json_refuses_what_ruby_would_not_read_back(text: str, says: str) -> None:
    with pytest.raises(UserError, match=says):
        validate.settings(SettingPairs(json=(f"gitlab_rails.x={text}",)))


def test_an_inventory_from_before_typed_settings_keeps_its_meaning() -> None:
    old = {
        "instances": {
            "a": {
                "name": "a",
                "state": "running",
                "image": "gitlab/gitlab-ce:18.11.11-ce.0",
                "address": "127.0.0.1",
                "projects": ["p"],
                "ssh": {"address": "127.0.0.1", "port": 2222},
                "subnet": "10.1.0.0/24",
                "settings": {"a.b": "true", "a.c": "8080", "a.d": "nil", "a.e": "010"},
                "created_at": "2026-01-01T00:00:00Z",
            }
        }
    }
    inventory = Inventory.model_validate(old)
    assert inventory.version == INVENTORY_VERSION
    assert inventory.instances["a"].settings == {
        "a.b": True,
        "a.c": 8080,
        "a.d": None,
        "a.e": "010",
    }
    # Read again once written: a typed string "true" stays a string.
    again = Inventory.model_validate_json(inventory.model_dump_json())
    again.instances["a"].settings["a.b"] = "true"
    assert (
        Inventory.model_validate_json(again.model_dump_json()).instances["a"].settings["a.b"]
        == "true"
    )


def test_memory_budget_sizes_puma_with_gitlabs_formula() -> None:
    standard = GitlabSettings()
    assert budget(standard) == 8 * GIB
    assert puma_workers(standard, cpus=16) == 6  # (8 - 1.5) GiB / 1 GiB per worker
    assert puma_workers(standard, cpus=1) == 2  # never below two
    assert puma_workers(GitlabSettings(memory_budget="3g"), cpus=16) == 2
    constrained = GitlabSettings(memory_profile="constrained")
    assert (budget(constrained), puma_workers(constrained)) == (int(2.5 * GIB), 0)


def config_tar(path: Path, names: list[str]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name in names:
            info = tarfile.TarInfo(f"/etc/gitlab/{name}")
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    return path


def test_a_config_archive_without_secrets_is_refused(tmp_path: Path) -> None:
    require_secrets(config_tar(tmp_path / "a.tar", ["gitlab.rb", "gitlab-secrets.json"]))
    with pytest.raises(BackupError, match=r"holds no gitlab-secrets\.json"):
        require_secrets(config_tar(tmp_path / "b.tar", ["gitlab.rb"]))


def test_log_backup_copies_files_as_they_are_and_skips_what_is_not_a_file(
    tmp_path: Path,
) -> None:
    from girofle.backup.instance import _add_snapshot, _log_backup
    from girofle.render.model import InstancePaths

    paths = InstancePaths.of(tmp_path, "x")
    (paths.log / "gitlab-rails").mkdir(parents=True)
    (paths.log / "gitlab-rails" / "production.log").write_text("one\ntwo\n")
    (paths.log / "gitlab-rails" / "@4000.s").symlink_to(paths.log / "rotated-away")  # dangling
    os.mkfifo(paths.log / "pipe")  # opening it would block the backup forever
    _log_backup(paths, tmp_path / "out")
    with tarfile.open(tmp_path / "out" / "logs.tar.gz") as tar:
        files = {m.name: m for m in tar.getmembers() if m.isfile()}
        assert set(files) == {"log/gitlab-rails/production.log"}
        member = tar.extractfile(files["log/gitlab-rails/production.log"])
        assert member is not None and member.read() == b"one\ntwo\n"
    # A segment svlogd deleted between the directory listing and the read is left out.
    with tarfile.open(tmp_path / "gone.tar", "w") as tar:
        _add_snapshot(tar, paths.log / "gitlab-rails" / "@4000.u", "log/@4000.u")
        assert tar.getmembers() == []

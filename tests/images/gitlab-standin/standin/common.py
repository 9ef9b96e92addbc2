"""Paths, event log, configuration, secrets, database and services of the stand-in."""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

VERSION_FILE = "/opt/gitlab/embedded/service/gitlab-rails/VERSION"
ETC = "/etc/gitlab"
DATA = "/var/opt/gitlab"
LOGS = "/var/log/gitlab"
GITLAB_RB = f"{ETC}/gitlab.rb"
SECRETS_JSON = f"{ETC}/gitlab-secrets.json"
INITIAL_ROOT_PASSWORD = f"{ETC}/initial_root_password"
EVENTS = f"{LOGS}/standin/events.log"
EFFECTIVE_CONFIG = "/run/standin/config.json"
# The embedded OpenSSL's trust store, as reconfigure leaves it (Debian's CAs and trusted-certs).
CA_BUNDLE = "/opt/gitlab/embedded/ssl/certs/cacert.pem"
HEALTHCHECK_RC = "/opt/gitlab/etc/gitlab-healthcheck-rc"
DB_FILE = f"{DATA}/postgresql/standin-db.json"
DB_LOCK = f"{DATA}/postgresql/.standin-db.lock"
REPOS = f"{DATA}/git-data/repositories"
BACKUPS = f"{DATA}/backups"
DATA_VERSION = f"{DATA}/gitlab-rails/VERSION"
RUN = "/run/standin"
# Written when the shutdown's `gitlab-ctl stop` has stopped PostgreSQL; RUN goes at boot.
DATABASE_STOPPED = f"{RUN}/postgresql-stopped"
PG_SOCKET = f"{DATA}/postgresql/.s.PGSQL.5432"
# GitLab's backup/restore pid lock (lib/tasks/gitlab/backup.rb: Rails.root/tmp).
BACKUP_PID_FILE = "/opt/gitlab/embedded/service/gitlab-rails/tmp/backup_restore.pid"
# PostgreSQL's postmaster.pid: present while the database runs; a SIGKILL leaves it.
POSTMASTER_PID = f"{DATA}/postgresql/data/postmaster.pid"
SWITCHES_FILE = f"{ETC}/standin-switches.json"
KNOWN_ROOTS_FILE = os.path.join(os.path.dirname(__file__), "gitlab_rb_roots.txt")
SERVICES = ("puma", "sidekiq", "sshd")
GIT_UID = 998


def version() -> str:
    with open(VERSION_FILE) as f:
        return f.read().strip()


def version_tuple() -> tuple[int, ...]:
    return tuple(int(part) for part in version().split("."))


def switch(name: str, default: float) -> float:
    """A test switch: GITLAB_STANDIN_<NAME> in the environment, else the key ``name`` of
    /etc/gitlab/standin-switches.json (which tests write on the host), else ``default``."""
    value = switch_text(name)
    return default if value is None else float(value)


def switch_text(name: str) -> str | None:
    """A text switch, from the same places as ``switch``."""
    value = os.environ.get(f"GITLAB_STANDIN_{name.upper()}")
    if value is None:
        try:
            with open(SWITCHES_FILE) as f:
                value = json.load(f).get(name)
        except (OSError, ValueError):
            value = None
    return None if value is None else str(value)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(component: str, message: str) -> None:
    """Append one timestamped line to the event log tests read."""
    os.makedirs(os.path.dirname(EVENTS), exist_ok=True)
    with open(EVENTS, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(f"{now()} {component} {message}\n")


def die(message: str, code: int = 1) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)


def write_private(path: str, text: str, mode: int = 0o600) -> None:
    """Write a file atomically with the given mode."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# --- gitlab.rb -------------------------------------------------------------------------

_ASSIGN = re.compile(r"^(\w+)((?:\[['\"][\w.-]+['\"]\])+)\s*=\s*(.+)$")
_KEY = re.compile(r"\[['\"]([\w.-]+)['\"]\]")
_FILE_READ = re.compile(r"""^File\.read\(\s*['"]([^'"]+)['"]\s*\)(\.strip|\.chomp)?$""")
_FROM_FILE = re.compile(r"""^from_file\(?\s*['"]([^'"]+)['"]\s*\)?$""")
_EXTERNAL_URL = re.compile(r"""^external_url\s*\(?\s*['"]([^'"]+)['"]\s*\)?$""")


class ConfigError(Exception):
    """gitlab.rb could not be evaluated: reconfigure fails with this message."""


def known_roots() -> frozenset[str]:
    """Top-level names gitlab.rb may use, from omnibus-gitlab's gitlab.rb.template."""
    with open(KNOWN_ROOTS_FILE) as f:
        return frozenset(line.strip() for line in f if line.strip() and not line.startswith("#"))


_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NESTED_FILE_READ = re.compile(r"""File\.read\(\s*(['"])([^'"]+)\1\s*\)(\.strip|\.chomp)?""")
_RUBY_WORDS = {"true": "True", "false": "False", "nil": "None"}


def _read_file(path: str, strip: bool) -> str:
    with open(path) as f:
        content = f.read()
    return content.strip() if strip else content


def _python_literal(text: str) -> str:
    """Ruby literals (strings, numbers, true/false/nil, arrays, hashes with '=>') as Python
    literals, outside strings only; File.read(...) becomes the file's text, as Ruby reads it
    when gitlab.rb is evaluated (a missing file fails the evaluation, as Errno::ENOENT does)."""
    out, position = [], 0
    for match in _STRING.finditer(text):
        out.append(_python_words(text[position : match.start()]))
        out.append(match.group(0))
        position = match.end()
    out.append(_python_words(text[position:]))
    return "".join(out)


def _python_words(code: str) -> str:
    code = code.replace("=>", ":")
    return re.sub(r"\b(true|false|nil)\b", lambda m: _RUBY_WORDS[m.group(1)], code)


def _value(text: str) -> Any:
    text = text.strip().rstrip(";").strip()
    match = _FILE_READ.match(text)
    if match:
        return _read_file(match.group(1), bool(match.group(2)))
    try:
        text = _NESTED_FILE_READ.sub(lambda m: repr(_read_file(m.group(2), bool(m.group(3)))), text)
    except OSError as err:
        raise ConfigError(
            f"Errno::ENOENT: No such file or directory @ rb_sysopen - {err.filename}"
        ) from None
    try:
        return ast.literal_eval(_python_literal(text))
    except (ValueError, SyntaxError):
        raise ConfigError(f"syntax error, unexpected value {text[:40]!r}") from None


def parse_ruby_config(text: str, config: dict[str, Any], origin: str) -> None:
    """Evaluate the subset of gitlab.rb syntax Girofle writes into ``config``, strictly.

    Real gitlab.rb is evaluated in Mixlib::Config's config_strict_mode (omnibus-gitlab
    files/gitlab-cookbooks/package/libraries/settings_dsl.rb, from_file): an unknown
    top-level name raises UnknownConfigOptionError. Ruby this double cannot evaluate is
    refused too, which is harsher than GitLab, never kinder.
    """
    statements = (
        part
        for row in text.split("\n")
        if not row.strip().startswith("#")
        for part in row.split(";")
    )
    for raw in statements:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if m := _EXTERNAL_URL.match(line):
            config["external_url"] = m.group(1)
        elif m := _FROM_FILE.match(line):
            with open(m.group(1)) as f:
                parse_ruby_config(f.read(), config, m.group(1))
        elif m := _ASSIGN.match(line):
            keys = [m.group(1), *_KEY.findall(m.group(2))]
            if keys[0] not in known_roots():
                raise ConfigError(
                    "Mixlib::Config::UnknownConfigOptionError: "
                    f"Reading unsupported config value {keys[0]}."
                )
            node = config
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = _value(m.group(3))
        else:
            event("config", f"refused line from {origin}: {line[:60]!r}")
            raise ConfigError(f"{origin}: cannot evaluate {line[:60]!r}")


def load_config() -> dict[str, Any]:
    """GITLAB_OMNIBUS_CONFIG first, then /etc/gitlab/gitlab.rb, as the real image does."""
    config: dict[str, Any] = {"external_url": f"http://{os.uname().nodename}"}
    parse_ruby_config(os.environ.get("GITLAB_OMNIBUS_CONFIG", ""), config, "GITLAB_OMNIBUS_CONFIG")
    if os.path.exists(GITLAB_RB):
        with open(GITLAB_RB) as f:
            parse_ruby_config(f.read(), config, GITLAB_RB)
    return config


def effective_config() -> dict[str, Any]:
    """The configuration the last reconfigure applied."""
    with open(EFFECTIVE_CONFIG) as f:
        result: dict[str, Any] = json.load(f)
    return result


def setting(config: dict[str, Any], section: str, key: str, default: Any) -> Any:
    value = config.get(section, {}).get(key)
    return default if value is None else value


# --- secrets and database --------------------------------------------------------------


def load_secrets() -> dict[str, Any]:
    with open(SECRETS_JSON) as f:
        result: dict[str, Any] = json.load(f)
    return result


def secrets_check(secrets_doc: dict[str, Any]) -> str:
    """What the database stores as 'encrypted with db_key_base': a keyed digest."""
    key = secrets_doc["gitlab_rails"]["db_key_base"].encode()
    return hmac.new(key, b"standin-encrypted-columns", hashlib.sha256).hexdigest()


def hash_password(password: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@contextlib.contextmanager
def database(write: bool = False) -> Iterator[dict[str, Any]]:
    """The stand-in's 'PostgreSQL': one JSON file, read and written under a lock. Once a
    shutdown stopped it, every client fails to connect, as libpq does, until the next boot."""
    if os.path.exists(DATABASE_STOPPED):
        print(
            f'PG::ConnectionBad: connection to server on socket "{PG_SOCKET}" failed: '
            "No such file or directory\n\tIs the server running locally and accepting "
            "connections on that socket?",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(1)
    os.makedirs(os.path.dirname(DB_FILE), exist_ok=True)
    with open(DB_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
        with open(DB_FILE) as f:
            db: dict[str, Any] = json.load(f)
        yield db
        if write:
            write_private(DB_FILE, json.dumps(db, indent=1, sort_keys=True))


def database_exists() -> bool:
    return os.path.exists(DB_FILE)


def new_database(root_password: str, secrets_doc: dict[str, Any]) -> None:
    salt = secrets.token_hex(8)
    db = {
        "schema": 1,
        "migrated_to": version(),
        "schema_version": version(),
        "secrets_check": secrets_check(secrets_doc),
        "users": [
            {
                "id": 1,
                "username": "root",
                "name": "Administrator",
                "salt": salt,
                "password": hash_password(root_password, salt),
            }
        ],
        "tokens": [],
        "projects": [],
        "next_project_id": 1,
    }
    os.makedirs(os.path.dirname(DB_FILE), exist_ok=True)
    write_private(DB_FILE, json.dumps(db, indent=1, sort_keys=True))


# --- services ----------------------------------------------------------------------------


def _pidfile(service: str) -> str:
    return f"{RUN}/{service}.pid"


def service_pid(service: str) -> int | None:
    """The pid of a running service, or None (zombies count as stopped)."""
    try:
        with open(_pidfile(service)) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError):
        return None
    return None if state in ("Z", "X") else pid


def service_command(service: str) -> list[str]:
    if service == "sshd":
        return ["/usr/sbin/sshd", "-D", "-e", "-f", "/opt/standin/assets/sshd_config"]
    module = {"puma": "standin.server", "sidekiq": "standin.sidekiq"}[service]
    return [sys.executable, "-m", module]


def start_service(service: str) -> bool:
    """Start a service unless it runs; return whether it was started."""
    if service_pid(service) is not None:
        return False
    os.makedirs(RUN, exist_ok=True)
    logdir = f"{LOGS}/{service}"
    os.makedirs(logdir, exist_ok=True)
    with open(f"{logdir}/current", "a") as out:
        proc = subprocess.Popen(
            service_command(service),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    with open(_pidfile(service), "w") as f:
        f.write(str(proc.pid))
    event("service", f"start {service} pid={proc.pid}")
    return True


def stop_service(service: str, timeout: float = 15.0) -> bool:
    """Stop a service if it runs; return whether it was stopped."""
    pid = service_pid(service)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while service_pid(service) is not None and time.monotonic() < deadline:
        # The process is reaped by init (PID 1); poll until it is gone.
        time.sleep(0.05)
    if service_pid(service) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_pidfile(service))
    event("service", f"stop {service}")
    return True


def kv_args(argv: list[str]) -> dict[str, str]:
    """Rake-style KEY=VALUE arguments, with the environment as fallback."""
    result = {k: v for k, v in os.environ.items() if k.isupper()}
    for arg in argv:
        if "=" in arg:
            key, value = arg.split("=", 1)
            result[key] = value
    return result


def chown_git(path: str) -> None:
    with contextlib.suppress(PermissionError):
        os.chown(path, GIT_UID, GIT_UID)

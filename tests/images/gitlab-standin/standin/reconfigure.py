"""The stand-in's reconfigure: apply gitlab.rb, make secrets and the database, write the rc."""

from __future__ import annotations

import json
import os
import secrets
import time

from standin import common, upgrade
from standin.common import event


def _ensure_secrets() -> dict[str, object]:
    if not os.path.exists(common.SECRETS_JSON):
        doc = {
            "gitlab_rails": {
                name: secrets.token_hex(64)
                for name in ("db_key_base", "secret_key_base", "otp_key_base")
            },
            "gitlab_shell": {"secret_token": secrets.token_hex(32)},
        }
        common.write_private(common.SECRETS_JSON, json.dumps(doc, indent=2) + "\n")
        event("reconfigure", "created gitlab-secrets.json")
    return common.load_secrets()


def _ensure_database(config: dict[str, object], secrets_doc: dict[str, object]) -> None:
    if common.database_exists():
        return
    password = common.setting(config, "gitlab_rails", "initial_root_password", None)
    if password is None:
        password = secrets.token_urlsafe(24)
        common.write_private(
            common.INITIAL_ROOT_PASSWORD,
            "# WARNING: This value is valid only in the following conditions\n"
            f"Password: {password}\n",
        )
    common.new_database(str(password), secrets_doc)  # type: ignore[arg-type]
    event("reconfigure", "initialized database")


def _redacted(node: object) -> object:
    if isinstance(node, dict):
        return {
            k: "[REDACTED]"
            if any(w in k for w in ("password", "token", "secret"))
            else _redacted(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_redacted(v) for v in node]
    return node


def _trust_certificates() -> int:
    """omnibus's trusted-certs step: each PEM certificate in /etc/gitlab/trusted-certs joins
    the embedded OpenSSL's trust store, at reconfigure (a certificate added later is not
    trusted until the next one). Here: Debian's bundle plus those, in one file that GitLab's
    Ruby reads (SSL_CERT_FILE). A file that is not a PEM certificate fails reconfigure."""
    directory = f"{common.ETC}/trusted-certs"
    names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    with open("/etc/ssl/certs/ca-certificates.crt") as f:
        bundle = f.read()
    for name in names:
        with open(os.path.join(directory, name)) as f:
            text = f.read()
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise common.ConfigError(f"{directory}/{name} is not a PEM certificate")
        bundle += "\n" + text
    os.makedirs(os.path.dirname(common.CA_BUNDLE), exist_ok=True)
    with open(common.CA_BUNDLE, "w") as f:
        f.write(bundle)
    return len(names)


def reconfigure(source: str) -> None:
    """Apply the configuration, as `gitlab-ctl reconfigure` does; log where it came from.

    Raises common.ConfigError, changing nothing, when gitlab.rb does not evaluate. It takes
    GITLAB_STANDIN_RECONFIGURE_SECONDS (a real run is minutes), and an exec'd run restarts
    puma when the configuration changed, as Chef's delayed restarts do: 502 until it is
    ready again.
    """
    event("reconfigure", f"start source={source}")
    try:
        config = common.load_config()
    except common.ConfigError as exc:
        event("reconfigure", f"failed: {exc}")
        raise
    time.sleep(common.switch("reconfigure_seconds", 0))
    previous = None
    if os.path.exists(common.EFFECTIVE_CONFIG):
        previous = common.effective_config()
    os.makedirs(common.ETC, exist_ok=True)
    secrets_doc = _ensure_secrets()
    _ensure_database(config, secrets_doc)
    # The gitlab-rails recipe copies the VERSION file before the database_migrations recipe
    # runs (omnibus recipes/default.rb, gitlab-rails.rb): it moves even when they then fail.
    os.makedirs(os.path.dirname(common.DATA_VERSION), exist_ok=True)
    with open(common.DATA_VERSION, "w") as f:
        f.write(common.version() + "\n")
    with common.database() as db:
        upgrade.refuse_newer_schema(db)
        migrated_to = db.get("migrated_to", common.version())
    if migrated_to != common.version():
        upgrade.migrate(migrated_to)  # db:migrate, again after a failed run
    os.makedirs(common.REPOS, exist_ok=True)
    os.makedirs(common.BACKUPS, mode=0o700, exist_ok=True)
    common.chown_git(common.BACKUPS)

    port = int(common.setting(config, "nginx", "listen_port", 80))
    https = common.setting(config, "nginx", "listen_https", None)
    if https is None:
        https = str(config["external_url"]).startswith("https://")
    scheme = "https" if https else "http"
    os.makedirs(os.path.dirname(common.HEALTHCHECK_RC), exist_ok=True)
    with open(common.HEALTHCHECK_RC, "w") as f:
        f.write(f"url='{scheme}://localhost:{port}/help'\nflags=(--insecure)\n")
    trusted = _trust_certificates()
    if trusted:
        event("reconfigure", f"trusted {trusted} certificate(s) from trusted-certs")
    os.makedirs(common.RUN, exist_ok=True)
    common.write_private(common.EFFECTIVE_CONFIG, json.dumps(config, indent=1, sort_keys=True))
    # Keep a copy of what was applied where tests can read it, without secrets (GitLab
    # never logs them either).
    with open(f"{common.LOGS}/standin/applied-config.json", "w") as f:
        json.dump(_redacted(config), f, indent=1, sort_keys=True)
    event("reconfigure", f"done external_url={config['external_url']} listen_port={port}")
    if source == "exec" and previous is not None and previous != config:
        for service in common.SERVICES:
            if common.stop_service(service):
                common.start_service(service)
        event("reconfigure", "restarted puma and sidekiq: configuration changed")

"""girofle.yml: the host's settings, as a strict model (unknown keys are rejected)."""

from __future__ import annotations

import re
import string
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from girofle.errors import UserError
from girofle.sso.settings import SsoSettings

DEFAULT_GITLAB_IMAGE = "gitlab/gitlab-ce:18.11.11-ce.0"
DEFAULT_TRAEFIK_IMAGE = "traefik:v3.7.15"
DEFAULT_DOMAIN = "kytes.io"
DEFAULT_HOSTNAME_PATTERN = "{project}.scm.{instance}.{domain}"
DURATION = re.compile(r"^\d+(ms|s|m|h)$")

Port = Annotated[int, Field(ge=1, le=65535)]

# An image reference, after the grammar of distribution/reference (domain[:port]/path:tag
# @digest): no whitespace, no newline, nothing a Dockerfile or Compose file would read as
# more than one value.
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = rf"^(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*(?::{_TAG})?(?:@{_DIGEST})?$"
ImageRef = Annotated[str, Field(pattern=IMAGE_REFERENCE, max_length=255)]
# A DNS name (letters, digits, '-', dots between labels), as Traefik rules and certificates
# take it: nothing that could close a Host(`...`) rule.
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DNS_NAME = rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})*$"
DnsName = Annotated[str, Field(pattern=DNS_NAME, max_length=253)]
DnsLabel = Annotated[str, Field(pattern=r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PortRange(Strict):
    """An inclusive range of ports Girofle may allocate from."""

    first: Port
    last: Port

    @model_validator(mode="after")
    def _ordered(self) -> PortRange:
        if self.last < self.first:
            raise ValueError("last must not be below first")
        return self


class SubnetPool(Strict):
    """Where instance networks get their subnets (one small subnet per instance)."""

    pool: IPv4Network = IPv4Network("10.213.0.0/16")
    prefix: int = Field(default=28, ge=16, le=29)

    @model_validator(mode="after")
    def _fits(self) -> SubnetPool:
        if not self.pool.is_private or self.pool.is_loopback or self.pool.is_link_local:
            raise ValueError(f"{self.pool} is not a private range (10/8, 172.16/12, 192.168/16)")
        if self.prefix < self.pool.prefixlen:
            raise ValueError(f"prefix /{self.prefix} is larger than the pool {self.pool}")
        return self


class Healthcheck(Strict):
    """The healthcheck rendered into each GitLab service (the image's own test)."""

    interval: str = "30s"
    timeout: str = "30s"
    retries: int = Field(default=5, ge=1)
    # GitLab's first boot takes minutes (reference §1.6); the image sets no start period.
    start_period: str = "10m"

    @field_validator("interval", "timeout", "start_period")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not DURATION.fullmatch(value):
            raise ValueError(f"{value!r} is not a duration such as 30s or 10m")
        return value


class GitlabSettings(Strict):
    image: ImageRef = DEFAULT_GITLAB_IMAGE
    shm_size: str = "256m"
    healthcheck: Healthcheck = Healthcheck()
    # How long new-stack and reconfigure wait for Docker to report an instance healthy.
    health_timeout: float = Field(default=1200.0, gt=0, allow_inf_nan=False)
    default_project: DnsLabel = "gitlab"
    # Seconds between SIGTERM and SIGKILL on every stop, restart and recreation: GitLab's
    # init runs `gitlab-ctl stop`, PostgreSQL included, which a SIGKILL would cut short.
    stop_grace_period: int = Field(default=180, ge=10, le=3600)
    # standard: puma workers from the budget with GitLab's formula; constrained: GitLab's
    # documented memory-constrained settings (single-mode puma, sidekiq 10, no monitoring).
    memory_profile: Literal["standard", "constrained"] = "standard"
    # The memory one instance may use, such as 8g (default: 8g standard, 2.5g constrained).
    memory_budget: str | None = Field(default=None, pattern=r"^\d+(\.\d+)?[kKmMgG]$")
    # How many instances may boot for the first time at once (default: half the CPUs):
    # the others wait their turn instead of timing out on a small host.
    concurrent_first_boots: int | None = Field(default=None, ge=1, le=64)


class TraefikSettings(Strict):
    image: ImageRef = DEFAULT_TRAEFIK_IMAGE
    address: IPv4Address = IPv4Address("127.0.0.1")
    http_port: Port = 80
    https_port: Port = 443
    # The dashboard at traefik.<domain>, behind basic auth (never api.insecure).
    dashboard: bool = True


class AcmeSettings(Strict):
    """A Traefik certresolver: Let's Encrypt (or another ACME CA) over HTTP-01 or DNS-01."""

    email: str = Field(min_length=3)
    challenge: Literal["http", "dns"] = "http"
    # DNS-01: a lego provider name (cloudflare, rfc2136, ...) and a 0600 env file with its
    # credentials, handed to Traefik's container as its environment.
    dns_provider: str | None = None
    env_file: Path | None = None
    ca_server: str | None = None  # default: Let's Encrypt production
    # A private ACME CA (step-ca, Pebble): the PEM of the CA that signs its HTTPS
    # certificate. It replaces, for Traefik's ACME client, the system's trusted CAs.
    ca_certificates: Path | None = None

    @model_validator(mode="after")
    def _dns_needs_a_provider(self) -> AcmeSettings:
        if self.challenge == "dns" and not self.dns_provider:
            raise ValueError("challenge dns needs dns_provider")
        return self


class TlsSettings(Strict):
    """How Traefik serves HTTPS: Girofle's own CA, ACME, or plain HTTP (labs only)."""

    mode: Literal["selfsigned", "acme", "none"] = "selfsigned"
    acme: AcmeSettings | None = None

    @model_validator(mode="after")
    def _acme_needs_settings(self) -> TlsSettings:
        if self.mode == "acme" and self.acme is None:
            raise ValueError("mode acme needs an acme section (email, challenge)")
        return self


class DnsSettings(Strict):
    """Where Girofle publishes A records by RFC 2136 dynamic update, signed with TSIG."""

    server: IPv4Address
    port: Port = 53
    zone: str = Field(min_length=1)
    key_name: str = Field(min_length=1)
    key_algorithm: str = "hmac-sha256"
    key_file: Path  # 0600, the TSIG secret in base64
    ttl: int = Field(default=300, ge=1)


def _cron(value: str | None) -> str | None:
    from croniter import croniter

    if value is not None and not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a cron schedule such as '0 */4 * * *'")
    return value


class BackupOverride(Strict):
    """One instance's departures from the fleet's backup policy (unset: the fleet's)."""

    schedule: str | None = None
    keep_last: int | None = Field(default=None, ge=1)
    keep_days: float | None = Field(default=None, gt=0)
    push: bool | None = None

    _schedule = field_validator("schedule")(_cron)


class BackupPolicy(Strict):
    """What applies to one instance: when it is backed up, what is kept, whether it is pushed."""

    schedule: str
    keep_last: int | None
    keep_days: float | None
    push: bool


class BackupSettings(Strict):
    """Instance backups: the schedule, local retention (keep the last N and/or those younger
    than D days), who runs the schedule, and per-instance overrides."""

    schedule: str = "0 */4 * * *"
    keep_last: int | None = Field(default=7, ge=1)
    keep_days: float | None = Field(default=None, gt=0)
    # sidecar: a service in each instance's stack runs the schedule; cron: the host's
    # crontab does (`girofle cron install`); none: only backups someone asks for.
    scheduler: Literal["sidecar", "cron", "none"] = "sidecar"
    # Scheduled backups are pushed to the remote, when one is set.
    push: bool = True
    instances: dict[str, BackupOverride] = Field(default_factory=dict)
    # Seconds Girofle waits for `gitlab-backup create|restore` (none: as long as it takes;
    # big instances take hours) and for `gitlab-rake gitlab:doctor:secrets` (hours on big
    # CI tables). Giving up leaves GitLab's process running; the next backup says so.
    gitlab_backup_timeout: float | None = Field(default=None, gt=0)
    doctor_timeout: float | None = Field(default=12 * 3600, gt=0)

    _schedule = field_validator("schedule")(_cron)

    def policy(self, name: str) -> BackupPolicy:
        """The fleet's policy with ``name``'s overrides applied."""
        override = self.instances.get(name, BackupOverride())
        merged = self.model_dump(include={"schedule", "keep_last", "keep_days", "push"})
        merged.update(override.model_dump(exclude_none=True))
        return BackupPolicy.model_validate(merged)


class DrillSettings(Strict):
    """Restore drills on a schedule, run by the same scheduler as backups (the sidecar or
    cron); each host runs one drill at a time, so the fleet's drills queue."""

    schedule: str | None = "30 3 * * 0"  # weekly, Sunday 03:30 (None: only when asked)
    source: Literal["local", "remote"] = "local"

    _schedule = field_validator("schedule")(_cron)


class RemoteSettings(Strict):
    """Storage in another place: a restic repository (any URL restic takes)."""

    repository: str = Field(min_length=1)
    # A 0600 file with the repository's password (default: <home>/secrets/home/restic/password).
    password_file: Path | None = None
    # For sftp: a private key mounted into the tools container at /run/girofle/ssh-key, and
    # the ssh command restic runs (sftp.command), e.g.
    # "ssh -i /run/girofle/ssh-key -p 2222 backup@host -s sftp".
    ssh_key: Path | None = None
    sftp_command: str | None = None
    # The sftp server's host keys, in OpenSSH's known_hosts format: the tools container reads
    # them as its system-wide known hosts, so ssh checks the server without being told not to.
    known_hosts: Path | None = None


class ToolsSettings(Strict):
    """The image Girofle builds to run restic and ssh."""

    base_image: ImageRef = "python:3.11-slim"
    image: ImageRef = "girofle-tools:0.1"


class GirofleConfig(Strict):
    """The whole of girofle.yml."""

    home_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{2,30}$")]
    data_root: Path
    # Where instances run: Compose projects on this host, or services on a Docker Swarm
    # whose manager this host is.
    target: Literal["compose", "swarm"] = "compose"
    routing: Literal["traefik", "ports"] = "traefik"
    domain: DnsName = DEFAULT_DOMAIN
    hostname_pattern: str = DEFAULT_HOSTNAME_PATTERN
    addresses: list[IPv4Address] = Field(min_length=1)
    http_ports: PortRange = PortRange(first=8080, last=8999)
    ssh_ports: PortRange = PortRange(first=2222, last=2999)
    instance_networks: SubnetPool = SubnetPool()
    gitlab: GitlabSettings = GitlabSettings()
    traefik: TraefikSettings = TraefikSettings()
    tls: TlsSettings = TlsSettings()
    dns: DnsSettings | None = None
    backups: BackupSettings = BackupSettings()
    drills: DrillSettings = DrillSettings()
    remote: RemoteSettings | None = None
    tools: ToolsSettings = ToolsSettings()
    # Single sign-on on every instance (none: GitLab's own passwords only).
    sso: SsoSettings | None = None
    parallelism: int = Field(default=4, ge=1, le=64)

    @field_validator("hostname_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError as err:
            raise ValueError(f"is not a pattern: {err}") from None
        fields = {name for _, name, spec, conversion in parts if name is not None}
        odd = [p for p in parts if p[1] is not None and (p[2] or p[3])]
        if (
            not {"project", "instance"} <= fields
            or fields - {"project", "instance", "domain"}
            or odd
        ):
            raise ValueError("must contain {project} and {instance}, and may contain {domain}")
        sample = value.format(project="p", instance="i", domain="example.org")
        if len(sample) > 253 or not re.fullmatch(DNS_NAME, sample):
            raise ValueError(f"does not make a DNS name (it makes {sample!r})")
        return value

    @field_validator("data_root")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value

    @model_validator(mode="after")
    def _distinct_edge_ports(self) -> GirofleConfig:
        if self.traefik.http_port == self.traefik.https_port:
            raise ValueError("traefik.http_port and traefik.https_port must differ")
        return self

    @model_validator(mode="after")
    def _what_swarm_lacks(self) -> GirofleConfig:
        # Refused before init lays anything out, rather than at the first deploy.
        if self.target == "swarm" and self.backups.scheduler == "sidecar":
            raise ValueError(
                "backups.scheduler: sidecar is not available with target: swarm yet; "
                "set backups.scheduler: cron (or none)"
            )
        if self.target == "swarm" and self.sso is not None:
            raise ValueError("sso is not available with target: swarm yet")
        if self.target == "swarm" and self.tls.mode == "acme":
            raise ValueError("tls.mode: acme is not available with target: swarm yet")
        return self


def describe_validation_error(err: ValidationError, source: str) -> str:
    """One line naming the dotted key that is wrong and why."""
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: {key}: {message}{more}"


def load_config(path: Path) -> GirofleConfig:
    """Read and validate girofle.yml; a bad file is a UserError naming the key."""
    return parse_config(read_config_source(path), path)


def read_config_source(path: Path) -> bytes:
    """girofle.yml's bytes, or a UserError saying why they cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path} does not exist: run `girofle init` first") from None
    except OSError as err:
        raise UserError(f"{path} cannot be read: {err.strerror or err}") from None


def parse_config(source: bytes, path: Path) -> GirofleConfig:
    """Validate girofle.yml's bytes (``path`` names it in errors)."""
    try:
        raw = yaml.safe_load(source.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: byte {err.start} is not UTF-8") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to be a girofle.yml") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}:{where} is not valid YAML") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of settings")
    try:
        return GirofleConfig.model_validate(raw)
    except ValidationError as err:
        raise UserError(describe_validation_error(err, str(path))) from None


def dump_config(config: GirofleConfig) -> str:
    """girofle.yml text for a config (deterministic: same config, same bytes)."""
    data = config.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)

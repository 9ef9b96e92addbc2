"""The one error tree. Each class carries the exit code the CLI maps it to."""

from __future__ import annotations


class GirofleError(Exception):
    """Base of every error Girofle raises on purpose."""

    exit_code = 1


class UserError(GirofleError):
    """Bad input: a usage or validation error the user can fix."""

    exit_code = 2


class NotFoundError(UserError):
    """A named instance, backup or file does not exist."""


class ConflictError(GirofleError):
    """The request clashes with what exists (a name or port in use, a lock held)."""

    exit_code = 3


class DockerError(GirofleError):
    """The engine or Compose failed; carries the command, exit code and stderr."""

    exit_code = 4

    def __init__(
        self,
        message: str,
        command: list[str] | None = None,
        returncode: int | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(message)
        self.command = command or []
        self.returncode = returncode
        self.stderr = stderr


class EngineUnavailableError(DockerError):
    """No Docker engine answers."""


class HealthTimeoutError(GirofleError):
    """An instance did not become healthy within its timeout."""

    exit_code = 5


class BackupError(GirofleError):
    """A backup or restore could not be completed."""

    exit_code = 6


class DnsError(GirofleError):
    """The DNS server refused or did not answer an update (or a check)."""

    exit_code = 7


class UpgradeError(GirofleError):
    """An upgrade stopped: a hop failed, or its background migrations did not finish."""

    exit_code = 8


class SsoError(GirofleError):
    """The identity provider refused or did not answer (a registration, or a check)."""

    exit_code = 9


def error_for_exit(code: int, message: str) -> GirofleError:
    """The error a Girofle command that exited with ``code`` raised (run elsewhere, e.g. on
    a swarm node): the same class, so the same exit code here."""
    kinds: list[type[GirofleError]] = [
        UserError, ConflictError, DockerError, HealthTimeoutError, BackupError, DnsError,
        UpgradeError, SsoError,
    ]  # fmt: skip
    for kind in kinds:
        if kind.exit_code == code:
            return kind(message)
    return GirofleError(message)

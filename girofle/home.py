"""Where Girofle keeps its files on a host, and the locks that serialise its writers."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from girofle.errors import ConflictError, UserError

INSTANCE_DIR_PREFIX = "noeud-gitlab-"
# The format of inventory.json (girofle.inventory). 2: settings are typed JSON values
# (before, strings that rendering typed itself).
INVENTORY_VERSION = 2


class Home(NamedTuple):
    """The Girofle home: girofle.yml, the inventory, rendered stacks and secrets.

    (A NamedTuple rather than a frozen dataclass: importing dataclasses is a sixth of what
    `girofle ls` costs on its quick path.)"""

    root: Path

    @classmethod
    def from_env(cls) -> Home:
        """GIROFLE_HOME if set, else ~/.girofle."""
        root = os.environ.get("GIROFLE_HOME") or str(Path.home() / ".girofle")
        return cls(Path(root).expanduser().resolve())

    @property
    def config_file(self) -> Path:
        return self.root / "girofle.yml"

    @property
    def inventory_file(self) -> Path:
        return self.root / "inventory.json"

    @property
    def stacks(self) -> Path:
        return self.root / "stacks"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def locks(self) -> Path:
        return self.root / ".locks"

    @property
    def home_secrets(self) -> Path:
        """The home's own secrets (its CA, the dashboard's password, restic's password):
        a tree apart from instances' secrets, so that no instance name can reach them."""
        return self.secrets / "home"

    def stack_dir(self, name: str) -> Path:
        return self.stacks / name

    def instance_secrets(self, name: str) -> Path:
        return self.secrets / "instances" / name

    def instance_secret_file(self, name: str, file: str) -> Path:
        return self.instance_secrets(name) / file

    @contextlib.contextmanager
    def slot(
        self, name: str, count: int, waiting: Callable[[float], None] = lambda elapsed: None
    ) -> Iterator[int]:
        """One of ``count`` slots named ``name`` (a counting semaphore across processes),
        waiting for one to free up; ``waiting`` hears how long, every few seconds."""
        self.locks.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        said = 0.0
        while True:
            for index in range(count):
                with (self.locks / f"{name}-{index}.lock").open("a") as handle:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue
                    yield index
                    return
            elapsed = time.monotonic() - started
            if elapsed - said >= 5 or said == 0:
                waiting(elapsed)
                said = elapsed or 0.001
            time.sleep(0.5)

    @contextlib.contextmanager
    def lock(self, name: str, wait: bool = True) -> Iterator[None]:
        """An exclusive advisory lock; without ``wait``, a held lock is a ConflictError.

        flock locks die with their process, so a SIGKILLed Girofle never leaves one held.
        """
        self.locks.mkdir(parents=True, exist_ok=True)
        with (self.locks / f"{name}.lock").open("a") as handle:
            flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
            try:
                fcntl.flock(handle, flags)
            except BlockingIOError:
                raise ConflictError(
                    f"{name} is busy: another girofle process is working on it"
                ) from None
            yield


def host_lock_file() -> Path:
    """The lock every home on this host shares (GIROFLE_HOST_LOCK to move it)."""
    configured = os.environ.get("GIROFLE_HOST_LOCK")
    if configured:
        return Path(configured)
    run_lock = Path("/run/lock")
    return (run_lock if run_lock.is_dir() else Path("/tmp")) / "girofle-host.lock"


@contextlib.contextmanager
def host_lock(
    waiting: Callable[[str], None] = lambda message: None, purpose: str = "allocation"
) -> Iterator[None]:
    """Exclusive across every Girofle home on the host: what one allocates on the engine is
    there for the others to see before they allocate (``purpose`` "drill": one restore
    drill at a time). flock works on a read-only handle, so homes of different users share
    one file (created world-readable in a sticky directory).
    """
    path = host_lock_file()
    if purpose != "allocation":
        path = path.with_name(f"girofle-{purpose}.lock")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        raise ConflictError(f"cannot open the host's lock {path}: {err.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting(f"waiting for another Girofle process to finish its {purpose} ({path})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def owner_name(uid: int) -> str:
    """A user's name, or ``uid N`` when the system has none for it."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def check_user(home: Home) -> str | None:
    """Girofle runs as the user who owns the home (`girofle host setup` makes it `girofle`):
    another user is refused, naming the one to use; root proceeds, and is told (returned)."""
    try:
        owner = home.root.stat().st_uid
    except FileNotFoundError:
        return None  # no home yet: whoever runs init owns it
    except OSError as err:
        raise UserError(f"{home.root} cannot be read: {err.strerror}") from None
    me = os.geteuid()
    if me == owner:
        return None
    name = owner_name(owner)
    if me == 0:
        return f"running as root in a home that belongs to {name} (files made now are root's)"
    raise UserError(
        f"{home.root} belongs to {name}: run Girofle as {name} (sudo -u {name} girofle ...)"
    )


SECRET_TREES = frozenset({"home", "instances"})


def needs_migration(home: Home) -> bool:
    """Whether secrets/ still holds entries of an older layout (girofle.home_layout)."""
    try:
        return any(entry.name not in SECRET_TREES for entry in home.secrets.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return False


def instance_root(data_root: Path, name: str) -> Path:
    """<data_root>/noeud-gitlab-<name>, the name operators of the original Girofle know."""
    return data_root / f"{INSTANCE_DIR_PREFIX}{name}"


def read_private(path: Path, holds: str) -> str:
    """The text of a secret file the operator gave, which must exist and be mode 0600;
    ``holds`` says what it holds, for the one line that says what is wrong."""
    if not path.is_file():
        raise UserError(f"{path} does not exist: create it, mode 0600 (it holds {holds})")
    if path.stat().st_mode & 0o077:
        raise UserError(f"{path} must be mode 0600 (it holds {holds})")
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path} cannot be read: {getattr(err, 'strerror', None) or err}") from None


def write_private(path: Path, data: str | bytes) -> None:
    """Write a secret atomically, mode 0600, its directory 0700."""
    private_dirs(path.parent)
    path.parent.chmod(0o700)
    atomic_write(path, data, mode=0o600)


def private_dirs(directory: Path) -> None:
    """Make ``directory`` and its missing parents, each made here 0700 (mkdir's parents=True
    would give the parents the umask's mode)."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for each in reversed(missing):
        each.mkdir(mode=0o700, exist_ok=True)


def atomic_write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    payload = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise

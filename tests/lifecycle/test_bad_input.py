"""Bad input: one line on stderr, a non-zero exit, and nothing created or changed."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from python_on_whales import DockerClient

from tests.fleet import Fleet, instance_name
from tests.helpers import HOME_LABEL

pytestmark = pytest.mark.engine


@dataclass
class Existing:
    fleet: Fleet
    name: str
    ssh_port: int


@pytest.fixture(scope="module")
def existing(module_fleet: Fleet) -> Existing:
    fleet = module_fleet
    fleet.init("--no-first-instance")
    name = instance_name()
    fleet.run("new-stack", name)
    return Existing(fleet, name, fleet.inventory()["instances"][name]["ssh"]["port"])


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def home_state(fleet: Fleet) -> tuple[dict[str, bytes], list[str]]:
    """Girofle's own files byte for byte, and which instance directories exist.

    A live instance's volumes change on their own (GitLab writes logs), so only their
    presence counts.
    """
    files = {
        p: (fleet.root / p).read_bytes()
        for p in fleet.files()
        if (fleet.root / p).is_file() and not p.startswith("data/")
    }
    return files, sorted(p.name for p in fleet.data_root.iterdir())


def engine_state(engine: DockerClient, home_id: str) -> tuple[list[str], list[str]]:
    labels = [("label", f"{HOME_LABEL}={home_id}")]
    containers = sorted(c.name for c in engine.container.list(all=True, filters=labels))  # type: ignore[arg-type]
    networks = sorted(n.name for n in engine.network.list(filters=labels))  # type: ignore[arg-type]
    return containers, networks


# (arguments, extra environment, exit code, words of the message). "{name}" is the instance
# that exists, "{ssh}" its SSH port, "{busy}" a port a host process listens on.
CASES = [
    (["new-stack", "Upper"], {}, 2, "invalid instance name 'Upper'"),
    (["new-stack", "9lives"], {}, 2, "invalid instance name '9lives'"),
    (["new-stack", "a" * 41], {}, 2, "at most 40 characters"),
    (["new-stack", "ends-with-"], {}, 2, "invalid instance name"),
    (["new-stack", "nl\n"], {}, 2, "invalid instance name 'nl\\n'"),
    (["new-stack", "edge"], {}, 2, "the home uses it for its own objects"),
    (["new-stack", "proxy"], {}, 2, "the home uses it for its own objects"),
    (["new-stack", "ca"], {}, 2, "the home uses it for its own objects"),
    (["new-stack", "{name}-backup"], {}, 2, "the home uses it for its own objects"),
    (["new-stack", "{name}"], {}, 2, "already exists"),
    (
        ["new-stack", "fresh-one", "--address", "10.9.9.9"],
        {},
        2,
        "10.9.9.9 is not assigned to Girofle",
    ),
    (["new-stack", "fresh-one", "--address", "not-an-ip"], {}, 2, "Invalid value for '--address'"),
    (
        ["new-stack", "fresh-one", "--ssh-port", "{ssh}"],
        {},
        3,
        "already allocated to another instance or container",
    ),
    (["new-stack", "fresh-one", "--ssh-port", "{busy}"], {}, 3, "is in use on this host"),
    (["new-stack", "fresh-one", "--set", "not a key=1"], {}, 2, "invalid setting"),
    (
        ["new-stack", "fresh-one", "--project", "Bad_Project"],
        {},
        2,
        "invalid project 'Bad_Project'",
    ),
    (["new-stack", "fresh-one", "--http-port", "8099"], {}, 2, "applies only to `ports` routing"),
    (["new-stack"], {}, 2, "Missing argument 'NAME'"),
    (["start", "nope"], {}, 2, "no instance named 'nope'"),
    (["stop", "nope"], {}, 2, "no instance named 'nope'"),
    (["rm", "nope"], {}, 2, "no instance named 'nope'"),
    (
        ["reconfigure", "{name}", "--set", "external_url.x=y"],
        {},
        2,
        "Girofle sets it from hostname_pattern",
    ),
    (["init", "--yes"], {}, 2, "this home is initialised"),
    (
        ["new-stack", "fresh-one"],
        {"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
        4,
        "does not answer",
    ),
    (["ls"], {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, 4, "does not answer"),
]


@pytest.mark.parametrize(
    ("args", "env", "code", "message"), CASES, ids=[" ".join(c[0])[:40] for c in CASES]
)
def test_bad_input_is_refused_cleanly(
    existing: Existing,
    engine: DockerClient,
    busy_port: int,
    args: list[str],
    env: dict[str, str],
    code: int,
    message: str,
) -> None:
    fleet = existing.fleet
    subst = {"name": existing.name, "ssh": str(existing.ssh_port), "busy": str(busy_port)}
    argv = [a.format(**subst) for a in args]
    home_before = home_state(fleet)
    engine_before = engine_state(engine, fleet.home_id)
    proc = fleet.run(*argv, env=env, check=False)
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert message.format(**subst) in proc.stderr
    # One line, Click's usage errors included (they name where the help is).
    assert len(lines) == 1 and lines[0].startswith("girofle: "), lines
    assert home_state(fleet) == home_before
    assert engine_state(engine, fleet.home_id) == engine_before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gitlab:\n  imagee: x\n", "gitlab.imagee: unknown key"),
        ("routing: [\n", "is not valid YAML"),
        ("parallelism: 0\n", "parallelism: Input should be greater than or equal to 1"),
    ],
)
def test_a_malformed_girofle_yml_is_named(
    existing: Existing, engine: DockerClient, text: str, message: str
) -> None:
    fleet = existing.fleet
    config = fleet.root / "girofle.yml"
    original = config.read_text()
    config.write_text(original + text)
    inventory = (fleet.root / "inventory.json").read_bytes()
    engine_before = engine_state(engine, fleet.home_id)
    proc = fleet.run("new-stack", "fresh-one", check=False)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert message in line and "girofle.yml" in line
    assert (fleet.root / "inventory.json").read_bytes() == inventory
    assert not (fleet.root / "stacks" / "fresh-one").exists()
    assert engine_state(engine, fleet.home_id) == engine_before
    config.write_text(original)


def test_an_instance_pool_over_an_engine_network_is_refused_at_init(
    make_fleet: Callable[[], Fleet], engine: DockerClient
) -> None:
    fleet = make_fleet()
    bridge = engine.network.inspect("bridge").ipam.config[0]["Subnet"]
    proc = fleet.run(
        "init", "--no-first-instance", "-c", f"instance_networks.pool={bridge}", check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"girofle: instance_networks.pool {bridge} overlaps the engine's network bridge "
        f"({bridge}): choose another private range"
    ]
    assert not fleet.root.exists()

"""Choosing free (address, port) pairs: never one Girofle holds, never one the host uses."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network

from girofle.config import PortRange, SubnetPool
from girofle.errors import ConflictError, UserError
from girofle.inventory import Endpoint


def host_port_free(address: IPv4Address, port: int) -> bool:
    """Whether nothing on the host listens on (address, port) or on the wildcard address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(address), port))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            if err.errno == errno.EADDRNOTAVAIL:
                # Another host's address (a swarm node's): nothing here can hold it, and
                # Swarm keeps two of its tasks off one host port of a node.
                return True
            raise
    return True


def check_address(address: IPv4Address, assigned: Iterable[IPv4Address]) -> None:
    """Refuse an address that girofle.yml does not assign to Girofle."""
    allowed = list(assigned)
    if address not in allowed:
        listed = ", ".join(str(a) for a in allowed)
        raise UserError(
            f"address {address} is not assigned to Girofle (girofle.yml addresses: {listed})"
        )


WILDCARD = IPv4Address("0.0.0.0")


def clashes(pair: Endpoint, taken: Iterable[Endpoint]) -> bool:
    """Whether a pair is held: the same port on the same address, or on every address
    (a binding on 0.0.0.0 holds the port on all of them)."""
    return any(
        held.port == pair.port
        and (held.address == pair.address or WILDCARD in (held.address, pair.address))
        for held in taken
    )


def allocate(
    address: IPv4Address,
    ports: PortRange,
    taken: set[Endpoint],
    is_free: Callable[[IPv4Address, int], bool] = host_port_free,
    wanted: int | None = None,
) -> Endpoint:
    """The first free pair on ``address`` in ``ports`` (or exactly ``wanted``, if given)."""
    if wanted is not None:
        pair = Endpoint(address=address, port=wanted)
        if clashes(pair, taken):
            raise ConflictError(f"{pair} is already allocated to another instance or container")
        if not is_free(address, wanted):
            raise ConflictError(f"{pair} is in use on this host")
        return pair
    for port in range(ports.first, ports.last + 1):
        pair = Endpoint(address=address, port=port)
        if not clashes(pair, taken) and is_free(address, port):
            return pair
    raise ConflictError(f"no free port on {address} in {ports.first}-{ports.last}")


def allocate_subnet(
    pool: SubnetPool, taken: set[IPv4Network], engine_subnets: Iterable[IPv4Network]
) -> IPv4Network:
    """The first subnet of the pool that no instance holds and no engine network overlaps."""
    busy = list(taken) + list(engine_subnets)
    for subnet in pool.pool.subnets(new_prefix=pool.prefix):
        if not any(subnet.overlaps(other) for other in busy):
            return subnet
    raise ConflictError(
        f"no free /{pool.prefix} subnet left in {pool.pool} (girofle.yml instance_networks)"
    )

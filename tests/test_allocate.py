"""Allocation: never a pair Girofle holds, never one the host uses, only assigned addresses."""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Address, IPv4Network

import pytest

from girofle.allocate import allocate, allocate_subnet, check_address, host_port_free
from girofle.config import PortRange, SubnetPool
from girofle.errors import ConflictError, UserError
from girofle.inventory import Endpoint

LOCAL = IPv4Address("127.0.0.1")
RANGE = PortRange(first=4000, last=4004)


def always_free(address: IPv4Address, port: int) -> bool:
    return True


def test_skips_pairs_held_by_girofle_and_busy_on_the_host() -> None:
    taken = {Endpoint(address=LOCAL, port=4000)}
    pair = allocate(LOCAL, RANGE, taken, is_free=lambda a, p: p != 4001)
    assert pair == Endpoint(address=LOCAL, port=4002)


def test_the_same_port_on_another_address_is_free() -> None:
    taken = {Endpoint(address=IPv4Address("127.0.0.2"), port=4000)}
    assert allocate(LOCAL, RANGE, taken, is_free=always_free).port == 4000


def test_exhausted_range_is_a_conflict() -> None:
    taken = {Endpoint(address=LOCAL, port=p) for p in range(4000, 4005)}
    with pytest.raises(ConflictError, match=re.escape("no free port on 127.0.0.1 in 4000-4004")):
        allocate(LOCAL, RANGE, taken, is_free=always_free)


def test_a_wanted_port_in_use_is_refused() -> None:
    with pytest.raises(ConflictError, match="already allocated"):
        allocate(LOCAL, RANGE, {Endpoint(address=LOCAL, port=4003)}, always_free, wanted=4003)
    with pytest.raises(ConflictError, match="in use on this host"):
        allocate(LOCAL, RANGE, set(), lambda a, p: False, wanted=4003)


def test_host_port_free_sees_a_real_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not host_port_free(LOCAL, port)
    assert host_port_free(LOCAL, port)


def test_only_assigned_addresses() -> None:
    check_address(LOCAL, [LOCAL])
    with pytest.raises(UserError, match=re.escape("10.9.9.9 is not assigned to Girofle")):
        check_address(IPv4Address("10.9.9.9"), [LOCAL])


def test_subnets_skip_held_ones_and_engine_overlaps() -> None:
    pool = SubnetPool(pool=IPv4Network("10.213.0.0/26"), prefix=28)
    held = {IPv4Network("10.213.0.0/28")}
    engine = [IPv4Network("10.213.0.16/29")]  # overlaps the second /28
    assert allocate_subnet(pool, held, engine) == IPv4Network("10.213.0.32/28")
    with pytest.raises(ConflictError, match="no free /28 subnet"):
        allocate_subnet(pool, held | {IPv4Network("10.213.0.32/27")}, engine)


def test_a_binding_on_every_address_holds_the_port_on_each() -> None:
    # A container of another home publishing 0.0.0.0:4000 takes 4000 on 127.0.0.1 too.
    taken = {Endpoint(address=IPv4Address("0.0.0.0"), port=4000)}
    assert allocate(LOCAL, RANGE, taken, is_free=always_free).port == 4001

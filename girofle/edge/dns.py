"""DNS publication: an A record per hostname, by RFC 2136 dynamic update signed with TSIG.

Girofle talks to the zone's primary over TCP (updates and the doctor's checks alike), so
one published port is enough. The TSIG secret stays in its 0600 file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update

from girofle.config import DnsSettings
from girofle.errors import DnsError, UserError
from girofle.home import read_private

TIMEOUT = 10.0


def _keyring(settings: DnsSettings) -> dict[dns.name.Name, dns.tsig.Key]:
    secret = read_private(settings.key_file, "the TSIG secret")
    name = dns.name.from_text(settings.key_name)
    key = dns.tsig.Key(name, secret, settings.key_algorithm)
    return {name: key}


def _relative(settings: DnsSettings, hostname: str) -> dns.name.Name:
    zone = dns.name.from_text(settings.zone)
    name = dns.name.from_text(hostname)
    if not name.is_subdomain(zone):
        raise UserError(f"{hostname} is not in the DNS zone {settings.zone}")
    return name.relativize(zone)


def _send(settings: DnsSettings, update: dns.update.UpdateMessage, what: str) -> None:
    server = f"{settings.server}:{settings.port}"
    try:
        response = dns.query.tcp(update, str(settings.server), port=settings.port, timeout=TIMEOUT)
    except dns.tsig.PeerError as err:  # BADKEY, BADSIG, BADTIME: the server refused the key
        raise DnsError(
            f"the DNS server {server} refused the TSIG key {settings.key_name} "
            f"({type(err).__name__.removeprefix('Peer')}) while {what}"
        ) from None
    except (dns.exception.DNSException, OSError) as err:
        raise DnsError(f"the DNS server {server} did not take the update ({what}): {err}") from None
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        raise DnsError(f"the DNS server {server} answered {dns.rcode.to_text(rcode)} while {what}")


def publish(settings: DnsSettings, records: Mapping[str, IPv4Address]) -> None:
    """Set one A record per hostname (replacing what was there), in one update."""
    if not records:
        return
    update = dns.update.UpdateMessage(
        settings.zone, keyring=_keyring(settings), keyalgorithm=settings.key_algorithm
    )
    for hostname, address in sorted(records.items()):
        update.replace(_relative(settings, hostname), settings.ttl, "A", str(address))
    _send(settings, update, f"publishing {', '.join(sorted(records))}")


def withdraw(settings: DnsSettings, hostnames: Iterable[str]) -> None:
    """Delete the A records of ``hostnames``, in one update."""
    names = sorted(set(hostnames))
    if not names:
        return
    update = dns.update.UpdateMessage(
        settings.zone, keyring=_keyring(settings), keyalgorithm=settings.key_algorithm
    )
    for hostname in names:
        update.delete(_relative(settings, hostname), "A")
    _send(settings, update, f"withdrawing {', '.join(names)}")


def addresses_of(settings: DnsSettings, hostname: str) -> set[str]:
    """The A records the zone's server gives for ``hostname`` (empty when none)."""
    query = dns.message.make_query(hostname, dns.rdatatype.A)
    try:
        response = dns.query.tcp(query, str(settings.server), port=settings.port, timeout=TIMEOUT)
    except (dns.exception.DNSException, OSError) as err:
        raise DnsError(f"the DNS server {settings.server}:{settings.port}: {err}") from None
    return {
        rdata.address
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.A
        for rdata in rrset
    }

"""One address policy for everything the service dials, and host names read the way browsers do.

An IPv6 address can carry an IPv4 address inside it (IPv4-mapped and -compatible forms, NAT64,
6to4, Teredo, ISATAP); a gateway on the path may deliver such a packet to that IPv4 address,
so every embedded address is judged as well as the outer one.

Host names are normalised like the WHATWG URL standard (UTS-46 mapping: full-width and
ideographic dots, circled digits, capitals; one trailing dot dropped; a name whose last label is
a number is an IPv4 address in any of its notations), so no spelling of a private address
passes as a name.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import SplitResult

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 8215's local-use NAT64 prefix: an operator may embed IPv4 at any RFC 6052 prefix length
# inside it, so no one reading is right; it is not globally reachable, so it is refused whole.
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
_WRAPPERS = tuple(ipaddress.IPv6Network(net) for net in ("::ffff:0:0/96", "::/96", "2001::/32"))
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_FORBIDDEN_HOST_CHARS = re.compile(r"[\x00-\x20#%/:<>?@\[\\\]^|\x7f]")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0[xX][0-9a-fA-F]*)$")


class HostError(ValueError):
    """A host name that can never be dialled; the message is safe to show."""


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address carries, by each form that embeds one."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    value, found = int(address), []
    if address.ipv4_mapped:
        found.append(address.ipv4_mapped)
    if value >> 32 == 0 and value > 1:  # IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks)
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address in NAT64_WELL_KNOWN:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address.sixtofour:
        found.append(address.sixtofour)
    if address.teredo:
        server, client = address.teredo
        found += [server, client]
    if (value >> 32) & 0xFDFFFFFF == 0x00005EFE:  # ISATAP interface identifier
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    return found


def _kind(address: IPAddress) -> str:
    if address.is_loopback:
        return "loopback"
    if address in NAT64_LOCAL_USE:
        return "local-use NAT64"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    return "non-public"


def refusal(address: IPAddress, allowed: Iterable[Network] = ()) -> str | None:
    """Why `address` may not be dialled, or None when it may.

    Allowed networks (settings) admit an address outright; otherwise the address and every
    IPv4 address embedded in it must be public unicast."""
    allowed = tuple(allowed)
    if any(address in network for network in allowed):
        return None
    embedded = embedded_ipv4(address)
    # A pure wrapper (mapped, compatible, Teredo) is as reachable as what it wraps; any other outer
    # address (a link-local ISATAP one, say) is judged as well.
    wrapper = bool(embedded) and any(address in network for network in _WRAPPERS)
    for candidate in [*embedded, *([] if wrapper else [address])]:  # the inner address names the kind
        if candidate is not address and any(candidate in network for network in allowed):
            continue
        if not candidate.is_global or candidate.is_multicast or candidate in NAT64_LOCAL_USE:
            inside = "" if candidate is address else f", which embeds {candidate}"
            return f"points to a {_kind(candidate)} address ({address}{inside}), which is not allowed"
    return None


def _ipv4_from_labels(host: str) -> ipaddress.IPv4Address:
    """WHATWG's IPv4 parser, by way of inet_aton (decimal, 0x hex and 0-octal parts, 1 to 4 of them)."""
    if not all(_NUMERIC_LABEL.match(label) for label in host.split(".")):
        raise HostError(f"host {host!r} ends in a number but is not an IPv4 address")
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise HostError(f"host {host!r} is not a valid IPv4 address") from None


def url_host(parts: SplitResult) -> str:
    """The host of a split URL, as `normalise_host` takes it. urlsplit drops the brackets of an IPv6
    literal, and with them what marks "[v1.x]" (IPvFuture, which no browser dials) as no host name."""
    hostname = parts.hostname or ""
    if parts.netloc.rpartition("@")[2].startswith("[") and ":" not in hostname:
        raise HostError(f"host [{hostname}] is in brackets but is not an IPv6 address")
    return hostname


def normalise_host(host: str) -> tuple[str, IPAddress | None]:
    """(the host as it will be dialled, in ASCII; the literal address it names, if any)."""
    if not host:
        raise HostError("the URL has no host")
    if ":" in host:  # urlsplit strips an IPv6 literal's brackets
        try:
            address = ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            raise HostError(f"host {host!r} is not a valid IPv6 address") from None
        return f"[{address.compressed}]", address
    try:
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
    except idna.IDNAError as exc:
        raise HostError(f"host {host!r} is not a valid host name ({exc})") from None
    if mapped.endswith("."):
        mapped = mapped[:-1]
    if not mapped or len(mapped) > 253 or _FORBIDDEN_HOST_CHARS.search(mapped):
        raise HostError(f"host {host!r} is not a valid host name")
    labels = mapped.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        ipv4 = _ipv4_from_labels(mapped)
        return str(ipv4), ipv4
    if any(not label for label in labels):
        raise HostError(f"host {host!r} has an empty label")
    try:
        ascii_labels = [label if label.isascii() else idna.encode(label).decode("ascii") for label in labels]
        for label in ascii_labels:
            if label.lower().startswith("xn--"):  # a Punycode label must decode (UTS-46 ToUnicode)
                idna.decode(label)
    except (idna.IDNAError, UnicodeError) as exc:
        raise HostError(f"host {host!r} is not a valid host name ({exc})") from None
    if any(len(label) > 63 for label in ascii_labels):
        raise HostError(f"host {host!r} has a label longer than 63 characters")
    return ".".join(ascii_labels).lower(), None


def is_loopback_name(host: str) -> bool:
    """A name every resolver maps to loopback (WHATWG and browsers treat *.localhost so too)."""
    return host in LOOPBACK_NAMES or host.endswith(".localhost")

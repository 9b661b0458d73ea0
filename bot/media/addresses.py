"""The IP policy of the safe fetcher: which addresses Veille may connect to.

Only globally routable unicast addresses pass. Everything a server-side request forgery could
aim at is refused: loopback, private, link-local (cloud metadata lives at 169.254.169.254),
CGNAT, multicast, reserved, unspecified, broadcast, documentation and benchmarking ranges, in
IPv4 and IPv6, including IPv4 addresses hidden inside IPv6 (mapped, compatible, 6to4, NAT64,
Teredo). Host names are parsed the way `inet_aton` and browsers read them, so that
`2130706433`, `0177.0.0.1`, `0x7f.1` and `127.1` are all seen as 127.0.0.1.

Pure functions, no I/O: the fetcher feeds them literal hosts and every resolved address.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address

# Ordered: the first matching range names the refusal. Each kind carries its article so the
# messages read naturally ("is a private address", "is an unspecified address").
_V4_RANGES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), kind)
    for net, kind in (
        ("0.0.0.0/32", "an unspecified"),
        ("0.0.0.0/8", "a reserved"),  # "this network": Linux connects 0.x to the local host
        ("127.0.0.0/8", "a loopback"),
        ("10.0.0.0/8", "a private"),
        ("172.16.0.0/12", "a private"),
        ("192.168.0.0/16", "a private"),
        ("169.254.0.0/16", "a link-local"),
        ("100.64.0.0/10", "a shared (CGNAT)"),
        ("192.0.0.0/24", "a reserved"),  # IETF protocol assignments
        ("192.0.2.0/24", "a documentation"),
        ("198.51.100.0/24", "a documentation"),
        ("203.0.113.0/24", "a documentation"),
        ("198.18.0.0/15", "a benchmarking"),
        ("192.88.99.0/24", "a reserved"),  # deprecated 6to4 relay anycast
        ("224.0.0.0/4", "a multicast"),
        ("255.255.255.255/32", "a broadcast"),
        ("240.0.0.0/4", "a reserved"),
    )
)

_V6_RANGES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), kind)
    for net, kind in (
        ("::/128", "an unspecified"),
        ("::1/128", "a loopback"),
        ("fe80::/10", "a link-local"),
        ("fec0::/10", "a reserved"),  # deprecated site-local
        ("fc00::/7", "a private"),  # unique local
        ("ff00::/8", "a multicast"),
        ("2001:db8::/32", "a documentation"),
        ("3fff::/20", "a documentation"),
        ("2001:2::/48", "a benchmarking"),
        ("100::/64", "a reserved"),  # discard-only
        ("2001:10::/28", "a reserved"),  # ORCHID
        ("2001:20::/28", "a reserved"),  # ORCHIDv2
        ("5f00::/16", "a reserved"),  # SRv6 SIDs
    )
)

# Prefixes whose low 32 bits are an IPv4 address that traffic may end up at.
_NAT64 = (IPv6Network("64:ff9b::/96"), IPv6Network("64:ff9b:1::/48"))
_COMPATIBLE = IPv6Network("::/96")  # deprecated IPv4-compatible addresses, ::a.b.c.d


class NotAnAddress(ValueError):
    """The host looks numeric (IPv4-like) but is not a valid address in any spelling."""


def parse_ipv4_loose(host: str) -> IPv4Address | None:
    """Read `host` as `inet_aton` and the WHATWG URL standard do, or None if it is a name.

    Accepts 1 to 4 dot-separated parts, each decimal, octal (leading 0) or hex (0x); the last
    part fills the remaining bytes (`127.1` is 127.0.0.1, `2130706433` is one 32-bit number).
    Raises NotAnAddress when the host is all numeric parts but out of range (`256.1.1.1`).
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # a trailing dot, as in "127.0.0.1."
    if not parts or len(parts) > 4 or not all(_looks_numeric(p) for p in parts):
        return None
    try:
        numbers = [_parse_part(p) for p in parts]
    except ValueError as exc:
        raise NotAnAddress(f"{host} is not a valid IPv4 address") from exc
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise NotAnAddress(f"{host} is not a valid IPv4 address")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return IPv4Address(value)


def _looks_numeric(part: str) -> bool:
    lowered = part.lower()
    if lowered.startswith("0x"):
        return all(c in "0123456789abcdef" for c in lowered[2:])
    return part.isascii() and part.isdigit()


def _parse_part(part: str) -> int:
    lowered = part.lower()
    if lowered.startswith("0x"):
        return int(lowered[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)  # "08" raises ValueError: not a valid octal part
    return int(part, 10)


def parse_literal_host(host: str) -> IPAddress | None:
    """The address a literal URL host stands for (any IPv4 spelling, or IPv6), or None for a name.

    IPv6 zone ids ("fe80::1%eth0") are kept by `ipaddress`; brackets must already be removed.
    Raises NotAnAddress for numeric-looking hosts that are out of range.
    """
    if ":" in host:
        try:
            return IPv6Address(host)
        except ValueError as exc:
            raise NotAnAddress(f"{host} is not a valid IPv6 address") from exc
    return parse_ipv4_loose(host)


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address carried inside an IPv6 one (mapped, compatible, 6to4, NAT64, Teredo)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        # Teredo carries (server, client); the client is where traffic is relayed to.
        return address.teredo[1]
    if any(address in net for net in _NAT64) or (
        address in _COMPATIBLE and int(address) > 1  # :: and ::1 are ranges of their own
    ):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_loopback(address: IPAddress) -> bool:
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None and address.ipv4_mapped is not None:
            return inner.is_loopback
        return address == IPv6Address("::1")
    return address.is_loopback


def refusal_kind(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why `address` is refused, as "a private", "a loopback"...; None when it may be used.

    `allow_loopback` (tests only) lets loopback through and nothing else.
    """
    if allow_loopback and _is_loopback(address):
        return None
    if isinstance(address, IPv4Address):
        for net, kind in _V4_RANGES:
            if address in net:
                return kind
        return None if address.is_global else "a reserved"
    if address.scope_id:
        # Zone ids only make sense for link-local targets; never route through one.
        return "a link-local"
    for net6, kind in _V6_RANGES:
        if address in net6:
            return kind
    inner = embedded_ipv4(address)
    if inner is not None:
        # An IPv6 address is as dangerous as the IPv4 address it reaches.
        return refusal_kind(inner, allow_loopback=False)
    # Catch-all for ranges added to the registries after this table was written.
    return None if address.is_global else "a reserved"


def as_address(text: str) -> IPAddress:
    """Parse a resolver's answer (canonical text, perhaps with a zone id)."""
    return ipaddress.ip_address(text)

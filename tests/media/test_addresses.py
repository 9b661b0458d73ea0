"""The IP policy: odd spellings of IPv4, embedded IPv4 in IPv6, and the refused ranges."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from bot.media.addresses import (
    NotAnAddress,
    embedded_ipv4,
    parse_literal_host,
    refusal_kind,
)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("10.0.0.5.", "10.0.0.5"),
        ("0", "0.0.0.0"),
        ("3232235777", "192.168.1.1"),
    ],
)
def test_ipv4_spellings(host: str, address: str) -> None:
    assert parse_literal_host(host) == IPv4Address(address)


@pytest.mark.parametrize("host", ["example.com", "1.2.3.example", "0x7g.1", "1.2.3.4.5", "a1"])
def test_names_are_not_addresses(host: str) -> None:
    assert parse_literal_host(host) is None


@pytest.mark.parametrize("host", ["256.1.1.1", "1.2.3.256", "08.0.0.1", "4294967296", "1.16777216"])
def test_numeric_hosts_out_of_range_are_refused(host: str) -> None:
    with pytest.raises(NotAnAddress):
        parse_literal_host(host)


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("2002:a9fe:a9fe::", "169.254.169.254"),
        ("64:ff9b::10.0.0.5", "10.0.0.5"),
        ("64:ff9b:1::a00:5", "10.0.0.5"),
        ("::10.0.0.5", "10.0.0.5"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),  # Teredo client
        ("2606:4700::1111", None),
    ],
)
def test_embedded_ipv4(address: str, inner: str | None) -> None:
    found = embedded_ipv4(IPv6Address(address))
    assert found == (IPv4Address(inner) if inner else None)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("2002:808:808::1", None),  # 6to4 of a public address
        ("10.1.2.3", "a private"),
        ("169.254.169.254", "a link-local"),
        ("100.100.100.200", "a shared (CGNAT)"),  # Alibaba Cloud's metadata service
        ("127.255.255.254", "a loopback"),
        ("0.1.2.3", "a reserved"),
        ("203.0.113.7", "a documentation"),
        ("198.19.255.1", "a benchmarking"),
        ("239.255.255.250", "a multicast"),
        ("fe80::abcd", "a link-local"),
        ("fd12:3456::1", "a private"),
        ("ff02::1", "a multicast"),
        ("2001:db8::1", "a documentation"),
        ("::ffff:10.0.0.1", "a private"),
        ("64:ff9b::169.254.169.254", "a link-local"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a documentation"),  # Teredo to 192.0.2.45
        ("fd00:ec2::254", "a private"),  # AWS IPv6 metadata
    ],
)
def test_refusal_kinds(address: str, kind: str | None) -> None:
    assert refusal_kind(ip_address(address)) == kind


def test_allow_loopback_allows_loopback_only() -> None:
    for loopback in ("127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"):
        assert refusal_kind(ip_address(loopback), allow_loopback=True) is None
    for other in ("10.0.0.1", "169.254.169.254", "0.0.0.0", "::", "fe80::1"):
        assert refusal_kind(ip_address(other), allow_loopback=True) is not None

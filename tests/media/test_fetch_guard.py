"""Hostile URLs: each gets a refusal and no connection is attempted anywhere.

The resolver is the test's own table, and the autouse socket guard records every connect; for
the refusals the list of attempts must stay empty.
"""

from __future__ import annotations

import pytest

from bot.media.fetch import SafeFetcher
from tests.media.conftest import FakeResolver, LocalSite, SocketGuard

RESOLVER_TABLE = {
    "evil.example": ["10.0.0.5"],
    "metadata.example": ["169.254.169.254"],
    "localhost": ["127.0.0.1", "::1"],
    "mixed.example": ["93.184.216.34", "10.0.0.5"],
    "cgnat.example": ["100.64.1.2"],
    "v6local.example": ["fe80::1"],
    "mapped.example": ["::ffff:192.168.0.1"],
    "nat64.example": ["64:ff9b::a9fe:a9fe"],  # 169.254.169.254 through NAT64
    "sixtofour.example": ["2002:7f00:1::1"],  # 127.0.0.1 inside 6to4
}

HOSTILE = [
    ("http://evil.example/", "refused: evil.example resolves to 10.0.0.5, a private address"),
    ("http://10.0.0.5/", "refused: 10.0.0.5 is a private address"),
    ("http://172.16.3.4/", "refused: 172.16.3.4 is a private address"),
    ("http://192.168.1.1:8080/", "refused: 192.168.1.1 is a private address"),
    (
        "http://169.254.169.254/latest/meta-data/",
        "refused: 169.254.169.254 is a link-local address",
    ),
    (
        "http://metadata.example/",
        "refused: metadata.example resolves to 169.254.169.254, a link-local address",
    ),
    ("http://127.0.0.1/", "refused: 127.0.0.1 is a loopback address"),
    ("http://2130706433/", "refused: 2130706433 is a loopback address"),
    ("http://0177.0.0.1/", "refused: 0177.0.0.1 is a loopback address"),
    ("http://0x7f.1/", "refused: 0x7f.1 is a loopback address"),
    ("http://0x7f000001/", "refused: 0x7f000001 is a loopback address"),
    ("http://127.1/", "refused: 127.1 is a loopback address"),
    ("http://127.0.0.1./", "refused: 127.0.0.1. is a loopback address"),
    ("http://0/", "refused: 0 is an unspecified address"),
    ("http://0.0.0.0:8000/", "refused: 0.0.0.0 is an unspecified address"),
    ("http://[::1]/", "refused: ::1 is a loopback address"),
    ("http://[::]/", "refused: :: is an unspecified address"),
    ("http://[::ffff:127.0.0.1]/", "refused: ::ffff:7f00:1 is a loopback address"),
    ("http://[::ffff:a9fe:a9fe]/", "refused: ::ffff:a9fe:a9fe is a link-local address"),
    ("http://[fe80::1%25eth0]/", "refused: fe80::1%eth0 is a link-local address"),
    ("http://[fd00::1]/", "refused: fd00::1 is a private address"),
    ("http://[2002:a00:5::1]/", "refused: 2002:a00:5::1 is a private address"),
    ("http://[64:ff9b::7f00:1]/", "refused: 64:ff9b::7f00:1 is a loopback address"),
    ("http://100.64.0.1/", "refused: 100.64.0.1 is a shared (CGNAT) address"),
    ("http://224.0.0.1/", "refused: 224.0.0.1 is a multicast address"),
    ("http://255.255.255.255/", "refused: 255.255.255.255 is a broadcast address"),
    ("http://240.0.0.1/", "refused: 240.0.0.1 is a reserved address"),
    ("http://192.0.2.10/", "refused: 192.0.2.10 is a documentation address"),
    ("http://198.18.0.1/", "refused: 198.18.0.1 is a benchmarking address"),
    ("http://localhost/", "refused: localhost resolves to 127.0.0.1, a loopback address"),
    ("http://mixed.example/", "refused: mixed.example resolves to 10.0.0.5, a private address"),
    (
        "http://cgnat.example/",
        "refused: cgnat.example resolves to 100.64.1.2, a shared (CGNAT) address",
    ),
    (
        "http://v6local.example/",
        "refused: v6local.example resolves to fe80::1, a link-local address",
    ),
    (
        "http://mapped.example/",
        "refused: mapped.example resolves to ::ffff:192.168.0.1, a private address",
    ),
    (
        "http://nat64.example/",
        "refused: nat64.example resolves to 64:ff9b::a9fe:a9fe, a link-local address",
    ),
    (
        "http://sixtofour.example/",
        "refused: sixtofour.example resolves to 2002:7f00:1::1, a loopback address",
    ),
    ("http://256.1.1.1/", "refused: 256.1.1.1 is not a valid IPv4 address"),
    ("file:///etc/passwd", "refused: scheme 'file' is not allowed"),
    ("ftp://example.com/x.png", "refused: scheme 'ftp' is not allowed"),
    ("gopher://127.0.0.1:6379/_INFO", "refused: scheme 'gopher' is not allowed"),
    ("javascript:alert(1)", "refused: scheme 'javascript' is not allowed"),
    ("data:image/png;base64,AAAA", "refused: scheme 'data' is not allowed"),
    ("http://user:secret@example.com/", "refused: URLs with credentials are not allowed"),
    ("http://user@127.0.0.1/", "refused: URLs with credentials are not allowed"),
]


@pytest.mark.parametrize(("url", "error"), HOSTILE, ids=[url for url, _ in HOSTILE])
async def test_hostile_url_is_refused_without_connecting(
    url: str, error: str, socket_guard: SocketGuard
) -> None:
    async with SafeFetcher(resolver=FakeResolver(table=dict(RESOLVER_TABLE))) as fetcher:
        result = await fetcher.fetch(url)
        media = await fetcher.fetch_media(url)
    assert result.error == error
    assert result.data is None and result.url == url
    assert [item.error for item in media] == [error]
    assert socket_guard.attempts == []


async def test_unknown_names_and_empty_answers_are_errors(socket_guard: SocketGuard) -> None:
    resolver = FakeResolver(table={"empty.example": []})
    async with SafeFetcher(resolver=resolver) as fetcher:
        unknown = await fetcher.fetch("http://nowhere.example/")
        empty = await fetcher.fetch("https://empty.example/")
        no_host = await fetcher.fetch("http:///path")
    assert unknown.error is not None and unknown.error.startswith(
        "could not resolve nowhere.example"
    )
    assert empty.error == "could not resolve empty.example: no address"
    assert no_host.error is not None and no_host.error.startswith("invalid URL")
    assert resolver.calls == [("nowhere.example", 80), ("empty.example", 443)]
    assert socket_guard.attempts == []


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("", "invalid URL: no scheme in ''"),
        ("//example.com/x.png", "invalid URL: no scheme in '//example.com/x.png'"),
        ("http://", "invalid URL: no host in 'http://'"),
        ("http://[::1", "invalid URL: Invalid IPv6 URL"),
        ("http://x.example:99999/", "invalid URL: Port out of range 0-65535"),
        ("https://xn--/", None),  # malformed IDNA: raises inside yarl's lazy decoding
        ("http://exa mple.com/", "invalid URL: bad characters in host 'exa mple.com'"),
        ("http://1.1.1.1\\@127.0.0.1/", None),
        ("http://" + "a" * 5000 + ".example/", None),
    ],
)
async def test_malformed_urls_are_errors_not_exceptions(
    url: str, error: str | None, socket_guard: SocketGuard
) -> None:
    async with SafeFetcher(resolver=FakeResolver()) as fetcher:
        result = await fetcher.fetch(url)
    assert result.error is not None and result.data is None
    if error is not None:
        assert result.error == error
    assert len(result.error) < 400  # hostile URLs do not flood the logs
    assert socket_guard.attempts == []


async def test_allow_loopback_lets_only_loopback_through(socket_guard: SocketGuard) -> None:
    resolver = FakeResolver(table=dict(RESOLVER_TABLE))
    async with SafeFetcher(allow_loopback=True, resolver=resolver) as fetcher:
        private = await fetcher.fetch("http://10.0.0.5/")
        metadata = await fetcher.fetch("http://169.254.169.254/")
        mixed = await fetcher.fetch("http://mixed.example/")
    assert private.error == "refused: 10.0.0.5 is a private address"
    assert metadata.error == "refused: 169.254.169.254 is a link-local address"
    assert mixed.error == "refused: mixed.example resolves to 10.0.0.5, a private address"
    assert socket_guard.attempts == []


async def test_dns_rebinding_connects_to_the_address_that_was_checked(
    socket_guard: SocketGuard,
) -> None:
    # First answer public, every later answer loopback: a second lookup at connect time would
    # land on 127.0.0.1. The guard blocks the public connect (tests never leave the machine)
    # and records where the fetcher tried to go.
    resolver = FakeResolver(sequences={"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    async with SafeFetcher(resolver=resolver) as fetcher:
        result = await fetcher.fetch("http://rebind.example/image.png")
    assert resolver.calls == [("rebind.example", 80)]
    assert socket_guard.take_blocked() == [("93.184.216.34", 80)]
    assert socket_guard.attempts == [("93.184.216.34", 80)]
    assert result.error is not None and result.error.startswith("connection failed")


async def test_dns_rebinding_on_a_local_server(site: LocalSite, socket_guard: SocketGuard) -> None:
    # The same property end to end: the checked loopback answer is used even though the
    # resolver would now say 10.0.0.5.
    resolver = FakeResolver(sequences={"rebind.test": [["127.0.0.1"], ["10.0.0.5"]]})
    async with SafeFetcher(allow_loopback=True, resolver=resolver) as fetcher:
        result = await fetcher.fetch(f"http://rebind.test:{site.port}/red.png")
    assert result.error is None and result.content_type == "image/png"
    assert resolver.calls == [("rebind.test", site.port)]
    assert socket_guard.attempts == [("127.0.0.1", site.port)]

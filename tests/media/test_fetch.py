"""SafeFetcher against a real local web server: images, pages, redirects, limits."""

from __future__ import annotations

import json

from bot.media.fetch import FetchResult, SafeFetcher, SystemResolver
from tests.media.conftest import FakeResolver, LocalSite, SocketGuard


def loopback_fetcher(**options: object) -> SafeFetcher:
    return SafeFetcher(allow_loopback=True, **options)  # type: ignore[arg-type]


async def test_fetches_an_image_and_sniffs_its_type(site: LocalSite) -> None:
    async with loopback_fetcher() as fetcher:
        result = await fetcher.fetch(site.url("/red.png"))
    assert result.error is None
    assert result.ok
    assert result.content_type == "image/png"
    assert result.data is not None and result.data.startswith(b"\x89PNG")
    assert result.final_url == site.url("/red.png")


async def test_content_type_comes_from_the_bytes_not_the_header(site: LocalSite) -> None:
    async with loopback_fetcher() as fetcher:
        photo = await fetcher.fetch(site.url("/photo"))  # a JPEG served as text/plain
        script = await fetcher.fetch_media(site.url("/script.jpg"))  # text served as image/jpeg
    assert photo.content_type == "image/jpeg"
    assert [item.error for item in script] == ["not an image or web page (unknown content type)"]
    assert script[0].data is None


async def test_a_name_is_resolved_once_and_connected_to_the_checked_address(
    site: LocalSite, socket_guard: SocketGuard
) -> None:
    # "images.test" does not exist in any real DNS: success proves the pinned address was used.
    resolver = FakeResolver(table={"images.test": ["127.0.0.1"]})
    async with loopback_fetcher(resolver=resolver) as fetcher:
        result = await fetcher.fetch(f"http://images.test:{site.port}/echo")
    assert result.error is None
    assert resolver.calls == [("images.test", site.port)]
    assert socket_guard.attempts == [("127.0.0.1", site.port)]
    headers = json.loads(result.data or b"{}")
    assert headers["Host"] == f"images.test:{site.port}"  # the name, not the address


async def test_sends_no_cookies_and_identifies_itself(site: LocalSite) -> None:
    async with loopback_fetcher() as fetcher:
        await fetcher.fetch(site.url("/echo"))  # the response sets a cookie
        second = await fetcher.fetch(site.url("/echo"))
    headers = json.loads(second.data or b"{}")
    assert "Cookie" not in headers
    assert "Authorization" not in headers
    assert headers["User-Agent"] == "VeilleBot/0.1 (+safety scanner)"


async def test_follows_three_redirects_but_not_four(site: LocalSite) -> None:
    async with loopback_fetcher() as fetcher:
        three = await fetcher.fetch(site.url("/redirect/3"))
        four = await fetcher.fetch(site.url("/redirect/4"))
    assert three.error is None and three.content_type == "image/png"
    assert three.final_url == site.url("/red.png")
    assert four.error == "too many redirects (max 3)"
    assert four.data is None
    assert site.hits.count("/red.png") == 1  # the fourth chain never reached the image


async def test_a_redirect_to_a_private_address_is_refused_without_connecting(
    site: LocalSite, socket_guard: SocketGuard
) -> None:
    async with loopback_fetcher() as fetcher:
        private = await fetcher.fetch(site.url("/redirect-to?to=http://10.0.0.5/admin"))
        metadata = await fetcher.fetch(
            site.url("/redirect-to?to=http://169.254.169.254/latest/meta-data/")
        )
    assert private.error == "refused: 10.0.0.5 is a private address"
    assert metadata.error == "refused: 169.254.169.254 is a link-local address"
    assert {host for host, _ in socket_guard.attempts} == {"127.0.0.1"}


async def test_every_redirect_is_checked_again_with_the_resolver(site: LocalSite) -> None:
    resolver = FakeResolver(table={"inside.test": ["192.168.1.10"]})
    async with loopback_fetcher(resolver=resolver) as fetcher:
        result = await fetcher.fetch(site.url("/redirect-to?to=http://inside.test/x"))
    assert result.error == "refused: inside.test resolves to 192.168.1.10, a private address"
    assert resolver.calls == [("inside.test", 80)]


async def test_a_redirect_to_another_scheme_is_refused(site: LocalSite) -> None:
    async with loopback_fetcher() as fetcher:
        result = await fetcher.fetch(site.url("/redirect-to?to=file:///etc/passwd"))
    assert result.error == "refused: scheme 'file' is not allowed"


async def test_streams_are_cut_at_the_size_cap(site: LocalSite) -> None:
    async with loopback_fetcher(max_bytes=1024 * 1024) as fetcher:
        streamed = await fetcher.fetch(site.url("/big"))
        declared = await fetcher.fetch(site.url("/big-declared"))
        bomb = await fetcher.fetch(site.url("/gzip-bomb"))
    for result in (streamed, declared, bomb):
        assert result.error == "too large: more than 1 MB"
        assert result.data is None


async def test_default_cap_message_names_twenty_megabytes(site: LocalSite) -> None:
    async with loopback_fetcher() as fetcher:
        assert fetcher.max_bytes == 20 * 1024 * 1024
        ok = await fetcher.fetch(site.url("/big"))  # 4 MB fits under the default
    assert ok.error is None and ok.data is not None and len(ok.data) == 4 * 1024 * 1024


async def test_gzip_content_is_decompressed(site: LocalSite) -> None:
    async with loopback_fetcher() as fetcher:
        result = await fetcher.fetch(site.url("/gzipped.png"))
    assert result.error is None and result.content_type == "image/png"


async def test_a_slow_server_times_out(site: LocalSite) -> None:
    async with loopback_fetcher(timeout_s=0.3) as fetcher:
        result = await fetcher.fetch(site.url("/slow"))
    assert result.error == "timed out after 0.3 s"
    assert result.data is None


async def test_http_errors_are_reported(site: LocalSite) -> None:
    async with loopback_fetcher() as fetcher:
        result = await fetcher.fetch(site.url("/missing"))
    assert result.error == "HTTP 404"


async def test_unfurls_a_page_into_its_preview_images(site: LocalSite) -> None:
    async with loopback_fetcher() as fetcher:
        results = await fetcher.fetch_media(site.url("/page"), max_images=3)
    by_url = {item.url: item for item in results}
    assert list(by_url) == [
        site.url("/red.png"),
        "http://10.0.0.5/inside.png",
        site.url("/page-without-image"),
    ]
    assert by_url[site.url("/red.png")].content_type == "image/png"
    assert by_url["http://10.0.0.5/inside.png"].error == "refused: 10.0.0.5 is a private address"
    assert by_url[site.url("/page-without-image")].error == "not an image or web page (text/html)"
    assert "/ignored-body.png" not in site.hits


async def test_max_images_limits_the_unfurled_fetches(site: LocalSite) -> None:
    async with loopback_fetcher() as fetcher:
        results = await fetcher.fetch_media(site.url("/page"), max_images=1)
    assert [item.url for item in results] == [site.url("/red.png")]
    assert all(isinstance(item, FetchResult) and item.ok for item in results)


async def test_a_page_without_preview_image_is_one_error(site: LocalSite) -> None:
    async with loopback_fetcher() as fetcher:
        results = await fetcher.fetch_media(site.url("/page-without-image"))
        direct = await fetcher.fetch_media(site.url("/photo"))
    assert [item.error for item in results] == ["no image found on this page"]
    assert [item.content_type for item in direct] == ["image/jpeg"]


async def test_the_system_resolver_answers_literals_without_the_network() -> None:
    assert await SystemResolver().resolve("127.0.0.1", 80) == ["127.0.0.1"]

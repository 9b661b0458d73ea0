"""Safe fetching of the links people share: an SSRF guard around aiohttp.

Every hop (the first URL and each redirect) is vetted before any connection: http/https only, no
credentials in the URL, and the host's addresses (the literal, or every address the resolver
returns) must all be public (see `addresses`). The connection then goes to the addresses that
were checked: aiohttp's resolver is replaced by `_PinnedResolver`, which only answers with
vetted addresses and never asks DNS again, so a name that changes its answer between check and
connect (DNS rebinding) cannot steer us inside. The URL keeps its host name, so the Host header,
TLS SNI and certificate checks are those of the name.

Bodies are streamed under a size cap and the whole fetch (redirects included) under one total
timeout. No cookies, no proxies from the environment, no auth headers, GET only. Failures never
raise: each URL gets a `FetchResult` whose `error` says what went wrong.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import zlib
from collections import OrderedDict
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Protocol

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.media import messages as msg
from bot.media.addresses import NotAnAddress, as_address, parse_literal_host, refusal_kind
from bot.media.sniff import is_image, sniff_mime
from bot.media.unfurl import PreviewTimeout, preview_images

DEFAULT_USER_AGENT = "VeilleBot/0.1 (+safety scanner)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
# Pins are per (host, port); a bot touches few hosts at a time, this bounds a long-running one.
_MAX_PINS = 1024


@dataclass(frozen=True)
class FetchResult:
    """One URL's outcome. `error` is None on success; `content_type` is sniffed from the bytes."""

    url: str
    final_url: str | None
    content_type: str | None
    data: bytes | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.data is not None


class Resolver(Protocol):
    """Turns a host name into IP address strings; the fetcher checks every one of them."""

    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    """The event loop's getaddrinfo (the operating system's resolver)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        addresses: list[str] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            address = str(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
        return addresses


class _Refused(Exception):
    """A hop was refused before connecting; the message is the result's error."""


class _PinnedResolver(AbstractResolver):
    """aiohttp's resolver, answering only with addresses the guard has already checked.

    An unknown host fails the connection: there is no fallback to DNS, by design.
    """

    def __init__(self) -> None:
        self._pins: OrderedDict[tuple[str, int], list[str]] = OrderedDict()

    def pin(self, host: str, port: int, addresses: list[str]) -> None:
        self._pins[(host, port)] = addresses
        self._pins.move_to_end((host, port))
        while len(self._pins) > _MAX_PINS:
            self._pins.popitem(last=False)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self._pins.get((host, port))
        if not addresses:
            raise OSError(f"{host} was not vetted by the fetch guard")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


class SafeFetcher:
    """Fetches untrusted URLs without letting them reach private networks. Use `async with`."""

    def __init__(
        self,
        *,
        max_bytes: int = 20 * 1024 * 1024,
        timeout_s: float = 10.0,
        allow_loopback: bool = False,
        max_redirects: int = 3,
        resolver: Resolver | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`ssl_context` replaces the system trust store (tests, private CAs); certificates are
        always verified against the URL's host name."""
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.allow_loopback = allow_loopback
        self.max_redirects = max_redirects
        self.resolver: Resolver = resolver or SystemResolver()
        self.user_agent = user_agent
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._pins = _PinnedResolver()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SafeFetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; the fetcher may not be used afterwards."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession must be made inside the running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=self._pins,
                use_dns_cache=False,
                limit=32,
                limit_per_host=4,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                # We decompress ourselves, under the size cap (a gzip bomb is a few KB).
                auto_decompress=False,
                trust_env=False,  # an environment proxy would connect on our behalf, unchecked
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"},
            )
        return self._session

    async def fetch(self, url: str) -> FetchResult:
        """GET `url` through the guard, following at most `max_redirects` redirects.

        Never raises for a bad or hostile URL: the refusal or failure is in `error`.
        """
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._follow(url)
        except TimeoutError:
            return FetchResult(url, None, None, None, msg.TIMED_OUT.format(seconds=self.timeout_s))

    async def fetch_media(self, url: str, max_images: int = 3) -> list[FetchResult]:
        """The image(s) behind `url`: the image itself, or a page's og:image/twitter:image.

        Each preview image is fetched through the same guard and gets its own result; a page
        without one gives a single result with an error. Non-image content is an error.
        """
        page = await self.fetch(url)
        if not page.ok or is_image(page.content_type):
            return [page]
        if page.content_type != "text/html":
            kind = page.content_type or msg.UNKNOWN_CONTENT
            return [replace(page, data=None, error=msg.NOT_AN_IMAGE.format(content_type=kind))]
        assert page.data is not None and page.final_url is not None
        try:  # off the event loop, linear time, under a deadline (bot/media/unfurl.py)
            image_urls = await preview_images(page.data, page.final_url, limit=max_images)
        except PreviewTimeout as exc:
            return [replace(page, data=None, error=str(exc))]
        if not image_urls:
            return [replace(page, data=None, error=msg.NO_IMAGE_ON_PAGE)]
        images = await asyncio.gather(*(self.fetch(image_url) for image_url in image_urls))
        return [
            item
            if not item.ok or is_image(item.content_type)
            else replace(
                item,
                data=None,
                error=msg.NOT_AN_IMAGE.format(
                    content_type=item.content_type or msg.UNKNOWN_CONTENT
                ),
            )
            for item in images
        ]

    async def _follow(self, url: str) -> FetchResult:
        current = url
        for _hop in range(self.max_redirects + 1):
            try:
                target = await self._vet(current)
                async with self._client().get(
                    target, allow_redirects=False, max_redirects=0
                ) as response:
                    if response.status in _REDIRECTS:
                        current = self._next_hop(target, response)
                        continue
                    if response.status >= 400:
                        return FetchResult(
                            url,
                            str(target),
                            None,
                            None,
                            msg.HTTP_STATUS.format(status=response.status),
                        )
                    data = await self._read_capped(response)
            except _Refused as refusal:
                return FetchResult(url, current, None, None, str(refusal))
            except TimeoutError:
                # aiohttp's own timeouts are TimeoutErrors too; report them the same way.
                return FetchResult(
                    url, current, None, None, msg.TIMED_OUT.format(seconds=self.timeout_s)
                )
            except (aiohttp.ClientError, OSError) as exc:
                # OSError: socket errors that aiohttp lets through unwrapped (resets mid-body).
                return FetchResult(
                    url, current, None, None, msg.CONNECTION_FAILED.format(detail=_describe(exc))
                )
            return FetchResult(url, str(target), sniff_mime(data), data, None)
        return FetchResult(
            url, current, None, None, msg.TOO_MANY_REDIRECTS.format(max=self.max_redirects)
        )

    def _next_hop(self, target: URL, response: aiohttp.ClientResponse) -> str:
        location = response.headers.get("Location")
        if not location:
            raise _Refused(msg.REDIRECT_WITHOUT_LOCATION.format(status=response.status))
        try:
            return str(target.join(URL(location)))
        except ValueError as exc:
            raise _Refused(msg.INVALID_URL.format(detail=_shown(location))) from exc

    async def _vet(self, raw: str) -> URL:
        """Check one hop and pin its addresses; returns the URL to request. Raises _Refused."""
        url, host, raw_host, port = _parse(raw)
        try:
            literal = parse_literal_host(host)
        except NotAnAddress as exc:
            raise _Refused(msg.REFUSED_NOT_AN_ADDRESS.format(detail=_shown(str(exc)))) from exc
        if literal is not None:
            kind = refusal_kind(literal, allow_loopback=self.allow_loopback)
            if kind is not None:
                raise _Refused(msg.REFUSED_ADDRESS.format(address=_shown(host), kind=kind))
            if literal.version == 4 and str(literal) != host:
                # Odd spellings (0x7f.1) become the canonical address aiohttp accepts; it then
                # connects to that literal without asking any resolver.
                return url.with_host(str(literal))
            return url
        # The ASCII (IDNA) form is what aiohttp will ask the pinned resolver for.
        addresses = await self._resolve(raw_host, port)
        self._pins.pin(raw_host, port, addresses)
        return url

    async def _resolve(self, host: str, port: int) -> list[str]:
        shown = _shown(host)
        try:
            answers = await self.resolver.resolve(host, port)
        except OSError as exc:
            raise _Refused(msg.RESOLVE_FAILED.format(host=shown, detail=_describe(exc))) from exc
        if not answers:
            raise _Refused(msg.RESOLVE_EMPTY.format(host=shown))
        for answer in answers:
            try:
                address = as_address(answer)
            except ValueError as exc:
                raise _Refused(msg.RESOLVE_FAILED.format(host=shown, detail=exc)) from exc
            kind = refusal_kind(address, allow_loopback=self.allow_loopback)
            if kind is not None:
                # One bad answer refuses the name: we cannot choose which one a retry would use.
                raise _Refused(msg.REFUSED_RESOLVED.format(host=shown, address=answer, kind=kind))
        return list(answers)

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        too_large = _Refused(msg.TOO_LARGE.format(limit=msg.size_text(self.max_bytes)))
        if response.content_length is not None and response.content_length > self.max_bytes:
            raise too_large  # refuse before reading a byte
        decoder = _decoder(response.headers.get("Content-Encoding", ""))
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK):
            if decoder is not None:
                # max_length bounds the output of each step, so a bomb never inflates in memory.
                chunk = _inflate(decoder, chunk, self.max_bytes - len(body) + 1)
            body += chunk
            if len(body) > self.max_bytes:
                raise too_large
        if decoder is not None:
            body += _inflate(decoder, b"", self.max_bytes - len(body) + 1)
            if len(body) > self.max_bytes:
                raise too_large
        return bytes(body)


def _parse(raw: str) -> tuple[URL, str, str, int]:
    """The URL, its host (decoded), its host as sent (ASCII) and its port; or _Refused."""
    try:
        url = URL(raw)
        scheme = url.scheme.lower()
        if not scheme:
            raise _Refused(msg.INVALID_URL.format(detail=f"no scheme in {_shown(raw)!r}"))
        if scheme not in ("http", "https"):
            raise _Refused(msg.REFUSED_SCHEME.format(scheme=_shown(scheme)))
        if url.user is not None or url.password is not None:
            raise _Refused(msg.REFUSED_CREDENTIALS)
        # yarl decodes IDNA lazily: a malformed A-label only raises here.
        host, raw_host, port = url.host, url.raw_host, url.port
    except (ValueError, TypeError) as exc:  # UnicodeError is a ValueError
        raise _Refused(msg.INVALID_URL.format(detail=_describe(exc))) from exc
    if not host or not raw_host or port is None:
        raise _Refused(msg.INVALID_URL.format(detail=f"no host in {_shown(raw)!r}"))
    if any(char.isspace() or not char.isprintable() for char in host):
        raise _Refused(msg.INVALID_URL.format(detail=f"bad characters in host {_shown(host)!r}"))
    return url, host, raw_host, port


def _shown(text: str, limit: int = 100) -> str:
    """`text` cut to a length that fits a log line (hostile URLs can be kilobytes long)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _decoder(encoding: str) -> Any:
    """A zlib decompressor for gzip/deflate content, None for identity; raises for others."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return zlib.decompressobj()
    raise _Refused(msg.UNSUPPORTED_ENCODING.format(encoding=name))


def _inflate(decoder: Any, chunk: bytes, budget: int) -> bytes:
    """Decompress `chunk`, producing at most `budget` bytes (one more than the cap is enough)."""
    try:
        out = decoder.decompress(decoder.unconsumed_tail + chunk, budget)
        if not chunk:
            out += decoder.flush() if len(out) < budget else b""
    except zlib.error as exc:
        raise _Refused(msg.BAD_ENCODING.format(encoding="compressed")) from exc
    return out


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."

"""Fixtures for the media tests: a socket guard, a controlled resolver, a local web server and
generated images.

The socket guard is autouse: any attempt to connect a TCP socket to a non-loopback address is
stopped before the system call, recorded, and fails the test unless the test takes it
(`socket_guard.take_blocked()`) to assert on it. So no test here can reach the network, even
when the code under test is wrong.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import ipaddress
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aiohttp import web
from PIL import Image

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class SocketGuard:
    attempts: list[tuple[str, int]] = field(default_factory=list)
    blocked: list[tuple[str, int]] = field(default_factory=list)

    def take_blocked(self) -> list[tuple[str, int]]:
        taken, self.blocked = self.blocked, []
        return taken


@pytest.fixture(autouse=True)
def socket_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[SocketGuard]:
    guard = SocketGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def vet(sock: socket.socket, address: object) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        assert isinstance(address, tuple)
        host, port = str(address[0]), int(address[1])
        guard.attempts.append((host, port))
        if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            guard.blocked.append((host, port))
            raise ConnectionRefusedError(f"socket guard: no connections to {host} in tests")

    def connect(sock: socket.socket, address: object) -> None:
        vet(sock, address)
        real_connect(sock, address)  # type: ignore[arg-type]

    def connect_ex(sock: socket.socket, address: object) -> int:
        vet(sock, address)
        return real_connect_ex(sock, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield guard
    assert not guard.blocked, f"unexpected connection attempts to {guard.blocked}"


@dataclass
class FakeResolver:
    """Answers from tables the test writes: `table` always gives the same answer, `sequences`
    gives its lists one per call (the last one repeats), as a rebinding DNS server would."""

    table: dict[str, list[str]] = field(default_factory=dict)
    sequences: dict[str, list[list[str]]] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host in self.sequences:
            answers = self.sequences[host]
            return list(answers[min(len(self.calls_for(host)), len(answers)) - 1])
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])

    def calls_for(self, host: str) -> list[tuple[str, int]]:
        return [call for call in self.calls if call[0] == host]


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (32, 24), colour: str = "red", mode: str = "RGB"
) -> bytes:
    """A generated single-colour image with a contrasting square in the top-left corner."""
    image = Image.new(mode, size, colour)
    if mode == "RGB":
        image.paste((0, 0, 255), (0, 0, size[0] // 4 or 1, size[1] // 4 or 1))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@dataclass
class LocalSite:
    base: str
    port: int
    hits: list[str]

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


def _site_app(hits: list[str]) -> web.Application:
    png = image_bytes("PNG")
    jpeg = image_bytes("JPEG")

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        hits.append(request.path)
        return await handler(request)

    async def red_png(_: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    async def photo_as_text(_: web.Request) -> web.Response:
        return web.Response(body=jpeg, content_type="text/plain")

    async def script_as_jpeg(_: web.Request) -> web.Response:
        return web.Response(body=b"#!/bin/sh\necho hi\n", content_type="image/jpeg")

    async def page(request: web.Request) -> web.Response:
        html = f"""<!doctype html><html><head><title>t</title>
        <meta property="og:image" content="/red.png">
        <meta name="twitter:image" content="http://127.0.0.1:{request.url.port}/photo">
        <meta property="og:image" content="http://10.0.0.5/inside.png">
        <meta property="og:image" content="/page-without-image">
        </head><body><meta property="og:image" content="/ignored-body.png"></body></html>"""
        return web.Response(text=html, content_type="text/html")

    async def bare_page(_: web.Request) -> web.Response:
        return web.Response(
            text="<html><head><title>none</title></head></html>", content_type="text/html"
        )

    async def redirect(request: web.Request) -> web.Response:
        left = int(request.match_info["n"])
        target = "/red.png" if left <= 1 else f"/redirect/{left - 1}"
        raise web.HTTPFound(target)

    async def redirect_to(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def big(_: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(_)
        for _i in range(64):  # 4 MB in 64 KB chunks, no Content-Length
            await response.write(b"\0" * 65536)
        await response.write_eof()
        return response

    async def big_declared(_: web.Request) -> web.Response:
        return web.Response(body=b"\0" * (2 * 1024 * 1024), content_type="image/png")

    async def gzip_bomb(_: web.Request) -> web.Response:
        body = gzip.compress(b"\0" * (8 * 1024 * 1024))  # ~8 KB on the wire
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "image/png"}
        )

    async def gzipped_png(_: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(png),
            headers={"Content-Encoding": "gzip", "Content-Type": "image/png"},
        )

    async def slow(_: web.Request) -> web.Response:
        await asyncio.Event().wait()  # never answers; the client's timeout must end it
        raise AssertionError("unreachable")

    async def echo(request: web.Request) -> web.Response:
        response = web.Response(text=json.dumps(dict(request.headers)), content_type="text/plain")
        response.set_cookie("session", "tracking")
        return response

    async def not_found(_: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    app = web.Application(middlewares=[count])
    app.router.add_get("/red.png", red_png)
    app.router.add_get("/photo", photo_as_text)
    app.router.add_get("/script.jpg", script_as_jpeg)
    app.router.add_get("/page", page)
    app.router.add_get("/page-without-image", bare_page)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_get("/redirect-to", redirect_to)
    app.router.add_get("/big", big)
    app.router.add_get("/big-declared", big_declared)
    app.router.add_get("/gzip-bomb", gzip_bomb)
    app.router.add_get("/gzipped.png", gzipped_png)
    app.router.add_get("/slow", slow)
    app.router.add_get("/echo", echo)
    app.router.add_get("/missing", not_found)
    return app


@pytest_asyncio.fixture(loop_scope="function")  # served on the test's own loop
async def site() -> AsyncIterator[LocalSite]:
    """A real aiohttp server on 127.0.0.1 (random port) that records the paths it served."""
    hits: list[str] = []
    runner = web.AppRunner(_site_app(hits), shutdown_timeout=0.1)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = runner.addresses[0][1]
    yield LocalSite(f"http://127.0.0.1:{port}", port, hits)
    await runner.cleanup()

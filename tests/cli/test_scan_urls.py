"""`veille scan URL`: hostile URLs are refused before any connection (issue 4), and with
VEILLE_FETCH_ALLOW_LOOPBACK a local server's image and page preview are scanned (kind "url").

No test here opens a connection to a non-loopback address: the hostile URLs are literal IPs,
`localhost` or other schemes, so no DNS is needed, and the in-process runs sit behind a socket
guard that records every connect attempt and stops non-loopback ones before the system call.
"""

from __future__ import annotations

import asyncio
import collections
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from click.testing import CliRunner

from bot.cli import cli
from tests.cli.conftest import SocketGuard, Veille, encode, json_lines
from tests.detectors.hash_images import photo_like

HOSTILE = [
    "http://10.0.0.1/",
    "http://192.168.1.1/admin",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://0/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[fd00::1]/",
    "http://localhost:8080/",
    "http://user:pw@198.51.100.7/",  # credentials (and a documentation address)
    "file:///etc/passwd",
    "ftp://127.0.0.1/x",
    "gopher://127.0.0.1:70/_",
    "javascript:alert(1)",
    "data:image/png;base64,iVBORw0KGgo=",
]


def scan_in_process(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(cli, ["scan", "--json", *args], catch_exceptions=False)
    return result.exit_code, json_lines(result.stdout), result.stderr


def test_hostile_urls_are_refused_without_connecting(
    isolated: dict[str, str], socket_guard: SocketGuard
) -> None:
    code, results, _ = scan_in_process(*HOSTILE)

    assert code == 3  # every URL refused: nothing flagged, nothing scanned either
    assert [r["source"] for r in results] == HOSTILE
    for result in results:
        assert result["kind"] == "url" and result["severity"] == "NONE"
        assert result["error"].startswith("refused"), result
    assert socket_guard.attempts == []  # not one connect() was even tried
    assert set(socket_guard.lookups) <= {"localhost"}  # no DNS but the hosts file's name
    errors = {r["source"]: r["error"] for r in results}
    assert "link-local" in errors["http://169.254.169.254/latest/meta-data/"]
    assert "loopback" in errors["http://0x7f.1/"] and "private" in errors["http://10.0.0.1/"]
    assert "scheme 'file'" in errors["file:///etc/passwd"]


def test_the_guard_does_see_connections(
    isolated: dict[str, str], socket_guard: SocketGuard, closed_port: int
) -> None:
    # The control for the test above: an allowed URL does reach connect() (here a closed port).
    result = CliRunner().invoke(
        cli,
        ["scan", "--json", f"http://127.0.0.1:{closed_port}/"],
        env={"VEILLE_FETCH_ALLOW_LOOPBACK": "true"},
        catch_exceptions=False,
    )
    [line] = json_lines(result.stdout)
    assert "connection failed" in line["error"]
    assert ("127.0.0.1", closed_port) in socket_guard.attempts


@pytest.fixture
def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalSite:
    """A loopback web server with a photo, a page that previews a banked image, and a text."""

    def __init__(self, banked: bytes) -> None:
        self.hits: collections.Counter[str] = collections.Counter()
        self.photo = encode(photo_like(41))
        self.banked = banked
        self.base = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        if request.path == "/photo.png":
            return web.Response(body=self.photo, content_type="image/png")
        if request.path == "/banked":  # served as octet-stream: the type is sniffed
            return web.Response(body=self.banked, content_type="application/octet-stream")
        if request.path == "/story.html":
            html = (
                '<html><head><title>Story</title><meta property="og:image" content="/banked">'
                "</head><body>hello</body></html>"
            )
            return web.Response(text=html, content_type="text/html")
        if request.path == "/to-private":
            raise web.HTTPFound("http://10.0.0.1/inside.png")
        return web.Response(text="just words", content_type="text/plain")


@pytest_asyncio.fixture(loop_scope="function")  # the tests' loop must serve it
async def site(tmp_path: Path) -> AsyncIterator[LocalSite]:
    banked = encode(photo_like(42), "JPEG", quality=90)
    (tmp_path / "banked.jpg").write_bytes(banked)
    local = LocalSite(banked)
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", local.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    local.base = f"http://127.0.0.1:{port}"
    yield local
    await runner.cleanup()


async def run_cli(veille: Veille, *args: str, **env: str) -> tuple[int, str, str]:
    """The real command in a subprocess, without blocking the loop that serves the site."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        cwd=veille.cwd,
        env={**veille.env, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_local_server_image_and_page_are_scanned_with_loopback_allowed(
    veille: Veille, site: LocalSite, tmp_path: Path
) -> None:
    for args in (
        ("db", "upgrade"),
        ("hashes", "add", str(tmp_path / "banked.jpg"), "--bank", "test"),
    ):
        code, _, stderr = await run_cli(veille, *args)
        assert code == 0, stderr
    urls = [
        f"{site.base}/photo.png",
        f"{site.base}/story.html",
        f"{site.base}/notes.txt",
        f"{site.base}/to-private",
    ]

    code, stdout, stderr = await run_cli(
        veille, "scan", "--json", *urls, VEILLE_FETCH_ALLOW_LOOPBACK="true"
    )

    assert code == 1, stderr  # the page previews a banked image
    photo, story, notes, redirect = json_lines(stdout)
    assert all(r["kind"] == "url" for r in (photo, story, notes, redirect))
    assert photo["source"] == urls[0] and photo["error"] is None
    assert photo["severity"] == "NONE" and "known_content" in photo["scores"]
    assert story["error"] is None and story["severity"] == "QUARANTINE"
    assert any(m["bank"] == "test" for m in story["matches"])
    assert "not an image" in notes["error"]
    assert "refused" in redirect["error"] and "10.0.0.1" in redirect["error"]
    assert site.hits["/banked"] == 1 and site.hits["/story.html"] == 1


async def test_local_server_is_not_contacted_without_the_test_switch(
    veille: Veille, site: LocalSite
) -> None:
    code, stdout, stderr = await run_cli(veille, "scan", "--json", f"{site.base}/photo.png")
    assert code == 3, stderr  # refused, so not scanned
    [line] = json_lines(stdout)
    assert "refused" in line["error"] and "loopback" in line["error"]
    assert sum(site.hits.values()) == 0

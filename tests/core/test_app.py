"""The composition root: Veille built from Settings (real detectors and bank, the SSRF-safe
fetcher on a loopback server), and start-up refusing an un-migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_veille, run_forever
from bot.core.types import Actor, MessageEvent, Platform, SetupInput
from bot.core.verdict import Severity
from bot.settings import Settings
from bot.store.engine import DatabaseNotMigrated
from tests.core.conftest import ADMIN, SAFETY, WS, shapes_png
from tests.core.recording_gateway import RecordingGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")

BANKED = shapes_png(seed=21)


@pytest.fixture
async def image_server() -> AsyncIterator[str]:
    """A loopback HTTP server with one image and one HTML page pointing at it (og:image)."""

    async def image(_: web.Request) -> web.Response:
        return web.Response(body=BANKED, content_type="image/png")

    async def page(request: web.Request) -> web.Response:
        og = f'<meta property="og:image" content="http://{request.host}/banked.png">'
        return web.Response(
            text=f"<html><head>{og}</head><body>hi</body></html>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/banked.png", image)
    app.router.add_get("/article", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_links_are_fetched_safely_and_matched_against_the_bank(
    settings: Settings, engine: AsyncEngine, image_server: str
) -> None:
    gateway = RecordingGateway()
    local = settings.model_copy(update={"fetch_allow_loopback": True})
    veille = await build_veille(local, engine, gateways=[gateway])
    try:
        await veille.save_setup("discord", WS, ADMIN, SetupInput(safety_channel_id=SAFETY))
        await veille.add_hashes("discord", WS, ADMIN, [BANKED], "imported")
        event = MessageEvent(
            Platform.DISCORD,
            WS,
            "general",
            "m1",
            Actor("u1"),
            text=f"look {image_server}/article and {image_server}/banked.png",
        )
        decision = await veille.handle_message(event)
        assert decision.severity == Severity.QUARANTINE and len(decision.ticket_ids) == 2
        private = MessageEvent(
            Platform.DISCORD,
            WS,
            "general",
            "m2",
            Actor("u1"),
            text="see http://169.254.169.254/latest/meta-data/",
        )
        assert (await veille.handle_message(private)).severity == Severity.NONE
        scan = await veille.scan_event(private, ADMIN)
        results = scan.extras["results"]
        assert isinstance(results, list) and results[0]["error"]  # refused, with the reason
    finally:
        await veille.aclose()


async def test_run_refuses_an_unmigrated_database(settings: Settings, tmp_path: Path) -> None:
    empty = settings.model_copy(
        update={
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
            "discord_token": "x",
        }
    )
    with pytest.raises(DatabaseNotMigrated):
        await run_forever(empty)


async def test_configured_platforms_are_started_through_their_runner(settings: Settings) -> None:
    from bot.app import _platform_starters

    assert _platform_starters(settings) == []  # nothing configured, nothing imported
    with_discord = settings.model_copy(update={"discord_token": "token"})
    assert [name for name, start in _platform_starters(with_discord) if callable(start)] == [
        "discord"
    ]


async def start(settings: Settings, veille: object) -> None:
    """The runner entry point of the third platform below (this module stands in for its
    runner.py)."""


async def test_a_third_platform_is_started_once_registered(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new platform is its descriptor in the registry: nothing in bot/app.py names it."""
    import bot.platforms as registry
    from bot.app import _platform_starters
    from bot.platforms.base import PlatformDescriptor

    matrix = PlatformDescriptor(
        name="matrix",
        title="Matrix",
        runner=__name__,
        configured=lambda s: True,
        secrets=lambda s: (),
    )
    monkeypatch.setattr(registry, "PLATFORMS", (*registry.PLATFORMS, matrix))
    assert _platform_starters(settings) == [("matrix", start)]

"""A hostile link cannot stall the bot: the quadratic-for-html.parser page (`<a ` repeated to
64 KiB, 67 s of event loop under the old parser) is posted as a link in one community while a
banked image is posted in another; the image is removed within 2 s. The page is served from a
loopback server (the socket guard of tests/media/conftest.py refuses anything else)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.clock import ManualClock
from bot.core.types import Actor, MediaRef, MessageEvent, Platform, SetupInput
from bot.media.unfurl import MAX_HTML_BYTES, page_images, preview_images
from bot.settings import Settings
from tests.core.conftest import ColourModel, make_veille, shapes_png
from tests.core.recording_gateway import RecordingGateway

HOSTILE = b"<html><head><title>x</title>" + b"<a " * (MAX_HTML_BYTES // 3)
ADMIN = Actor("admin-9", "Ada", is_platform_admin=True)


@pytest.fixture
async def hostile_site() -> AsyncIterator[str]:
    async def page(_: web.Request) -> web.Response:
        return web.Response(body=HOSTILE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/hostile", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/hostile"
    await runner.cleanup()


def test_the_hostile_page_parses_in_linear_time() -> None:
    started = time.perf_counter()
    assert page_images(HOSTILE * 4, "http://s.example/") == []  # capped at 64 KiB anyway
    assert time.perf_counter() - started < 0.5


async def test_preview_parsing_runs_off_the_loop_under_a_deadline() -> None:
    page = b"<html><head><meta property='og:image' content='/a.png'></head></html>"
    assert await preview_images(page, "http://s.example/p") == ["http://s.example/a.png"]


@pytest.mark.asyncio(loop_scope="session")  # the engine's and the page server's loop
async def test_a_hostile_link_does_not_delay_another_communitys_removal(
    settings: Settings, engine: AsyncEngine, hostile_site: str
) -> None:
    gateway = RecordingGateway()
    veille = await make_veille(
        settings.model_copy(update={"fetch_allow_loopback": True}),
        engine,
        ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
        gateway,
        ColourModel(),
    )
    try:
        for ws in ("guild-a", "guild-b"):
            await veille.save_setup("discord", ws, ADMIN, SetupInput(safety_channel_id="safety"))
        banked = shapes_png(seed=5)
        await veille.add_hashes("discord", "guild-b", ADMIN, [banked], "confirmed")
        gateway.files["https://cdn.example/b/0.png"] = banked
        link = MessageEvent(
            Platform.DISCORD,
            "guild-a",
            "general",
            "a1",
            Actor("u1", "Lee"),
            text=f"look {hostile_site}",
        )
        image = MessageEvent(
            Platform.DISCORD,
            "guild-b",
            "general",
            "b1",
            Actor("u2", "Kim"),
            media=(
                MediaRef(
                    "attachment",
                    "https://cdn.example/b/0.png",
                    media_id="b1-0",
                    filename="0.png",
                    content_type="image/png",
                ),
            ),
        )

        async def post_banked() -> float:
            await asyncio.sleep(0.05)  # the link is already being fetched and parsed
            started = time.perf_counter()
            decision = await veille.handle_message(image)
            assert decision.delete
            await veille.retry_outbox()
            assert [c.args["message_id"] for c in gateway.named("delete_message")] == ["b1"]
            return time.perf_counter() - started

        link_decision, removed_in = await asyncio.gather(veille.handle_message(link), post_banked())
        assert removed_in < 2.0
        assert link_decision.ticket_ids == []  # a page without a preview image: nothing to flag
        assert gateway.named("delete_message")[0].args["message_id"] == "b1"
    finally:
        await veille.aclose()

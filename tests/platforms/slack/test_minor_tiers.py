"""CRITICAL needs strong evidence, on Slack (Socket Mode, real Bolt): a possible minor with
review-level sexual scores is QUARANTINE with no preview uploaded anywhere; block-level sexual
evidence with a possible minor is CRITICAL. Image scores come from a detector built for the test
(tests/core/conftest.py ColourModel: red share = sexual, four times the blue share = minor)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from bot.store.models import Evidence
from tests.core.conftest import ColourModel, shapes_png
from tests.fakes.slack_server import FakeSlack
from tests.platforms.slack.world import SlackWorld, eventually, open_world

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def world(
    settings: Settings, engine: AsyncEngine, fake_slack: FakeSlack
) -> AsyncIterator[SlackWorld]:
    async with open_world(settings, engine, fake_slack, ColourModel(), mode="socket") as w:
        await w.setup()
        yield w


async def _post(world: SlackWorld, image: bytes) -> tuple[str, int]:
    file = world.slack.add_file("pic.png", image)
    ts = await world.message("CGEN", "UMEMBER", text="", files=[file])
    tickets = await eventually(world.tickets)
    [ticket] = [t for t in tickets if t.message_id == ts]
    assert ticket.id is not None
    await eventually(lambda: world.slack.called("chat.delete"))
    await eventually(world.card_posts)
    await asyncio.sleep(0.2)  # anything queued after the card would have gone by now
    return ticket.severity, ticket.id


async def _evidence(world: SlackWorld, ticket_id: int) -> Evidence:
    async with world.veille.store.read() as session:
        found = await session.execute(select(Evidence).where(Evidence.ticket_id == ticket_id))
        return found.scalar_one()


def _uploads(world: SlackWorld) -> list[object]:
    return [c for c in world.slack.calls if c.method.startswith("files.")]


async def test_possible_minor_with_review_level_scores_uploads_no_preview(
    world: SlackWorld,
) -> None:
    severity, ticket_id = await _post(world, shapes_png(red=0.55, blue=0.2))
    assert severity == "QUARANTINE"
    assert _uploads(world) == []  # no preview anywhere, not even in the quarantine channel
    card = world.card_posts()[0]
    assert "minor may be present" in json.dumps(card.get("blocks"))
    alerts = [
        c
        for c in world.slack.called("chat.postMessage")
        if c.args.get("channel") == "CSAFE" and "No preview was posted" in c.args.get("text", "")
    ]
    assert alerts
    evidence = await _evidence(world, ticket_id)
    assert evidence.ciphertext is not None and evidence.preview_png is None


async def test_block_level_sexual_with_a_possible_minor_is_critical(world: SlackWorld) -> None:
    severity, ticket_id = await _post(world, shapes_png(red=0.85, blue=0.15))
    assert severity == "CRITICAL"
    assert _uploads(world) == []
    assert "NCMEC" in json.dumps(world.card_posts()[0].get("blocks"))
    evidence = await _evidence(world, ticket_id)
    assert evidence.ciphertext is None and evidence.preview_png is None

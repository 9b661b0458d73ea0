"""CRITICAL needs strong evidence, through the real discord.py client: a possible minor with
review-level sexual scores is QUARANTINE without any preview; block-level sexual evidence with
a possible minor is CRITICAL. The image scores come from a detector built for the test
(tests/core/conftest.py ColourModel: red share = sexual, four times the blue share = minor)."""

from __future__ import annotations

import asyncio

from bot.core.scanner import Scanner
from bot.store.models import Evidence, Ticket
from detectors.hashes import HashBank
from detectors.registry import DetectorDeps, build_detectors
from tests.core.conftest import ColourModel, shapes_png
from tests.platforms.discord.conftest import DiscordWorld
from tests.platforms.discord.helpers import card_in


async def _start(world: DiscordWorld) -> None:
    others = build_detectors(["hashes", "text"], DetectorDeps(bank=HashBank()))
    world.scanner = Scanner([ColourModel(), *others])
    await world.start_bot()
    await world.configure()


async def _post(world: DiscordWorld, image: bytes) -> tuple[dict, Ticket]:
    posted = await world.fake.post_message(
        world.guild, world.general, world.member, "", files=[("pic.png", image)]
    )
    await world.fake.wait_call("DELETE", f"/channels/{world.general['id']}/messages/{posted['id']}")
    [ticket] = await world.rows(Ticket, Ticket.message_id == posted["id"])
    assert ticket.id is not None
    await world.settled(ticket.id)
    return posted, ticket


def _text(body: dict) -> str:
    parts = [body.get("content") or ""]
    for embed in body.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
    return "\n".join(parts)


async def test_possible_minor_with_review_level_scores_is_removed_without_any_preview(
    world: DiscordWorld,
) -> None:
    await _start(world)
    _, ticket = await _post(world, shapes_png(red=0.55, blue=0.2))
    assert ticket.severity == "QUARANTINE" and "minor_present" in ticket.categories
    card = await card_in(world, world.safety)
    assert "minor may be present" in _text(card.body) and not card.files
    await asyncio.sleep(0.2)  # anything queued after the card would have gone by now
    assert world.fake.find_calls("POST", f"/channels/{world.quarantine['id']}/messages") == []
    safety_posts = world.fake.find_calls("POST", f"/channels/{world.safety['id']}/messages")
    assert any("No preview was posted" in _text(c.body) for c in safety_posts)
    assert all(not c.files for c in safety_posts)
    assert world.fake.find_calls("POST", "/users/@me/channels") == []  # author not tipped off
    [evidence] = await world.rows(Evidence, Evidence.ticket_id == ticket.id)
    assert evidence.ciphertext is not None and evidence.preview_png is None


async def test_block_level_sexual_evidence_with_a_possible_minor_is_critical(
    world: DiscordWorld,
) -> None:
    await _start(world)
    _, ticket = await _post(world, shapes_png(red=0.85, blue=0.15))
    assert ticket.severity == "CRITICAL"
    card = await card_in(world, world.safety)
    assert "NCMEC" in _text(card.body)
    assert world.fake.find_calls("POST", f"/channels/{world.quarantine['id']}/messages") == []
    [evidence] = await world.rows(Evidence, Evidence.ticket_id == ticket.id)
    assert evidence.ciphertext is None and evidence.preview_png is None

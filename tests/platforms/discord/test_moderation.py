"""Flagged images through the real discord.py client and the fake Discord: quarantine, ticket
card, moderator buttons, refusals."""

from __future__ import annotations

import pytest

from bot.store.models import HashEntry, Ticket, TicketEvent
from tests.platforms.discord.conftest import DiscordWorld, shape_png
from tests.platforms.discord.helpers import (
    add_hashes,
    card_in,
    custom_ids,
    is_ephemeral,
    press,
    text_of,
)
from tests.tiny_clip import flagged_image, png_bytes


async def test_flagged_image_is_quarantined_with_ticket_card(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    known = shape_png(1)
    banked = await add_hashes(world, world.admin, known)
    assert is_ephemeral(banked)
    assert await world.rows(HashEntry, HashEntry.bank == "imported")

    posted = await world.fake.post_message(
        world.guild, world.general, world.member, "look", files=[("photo.png", known)]
    )

    fake = world.fake
    await fake.wait_call("DELETE", f"/channels/{world.general['id']}/messages/{posted['id']}")
    preview = await card_in(world, world.quarantine)
    assert [name for name, _ in preview.files] and all(
        name.startswith("SPOILER_") for name, _ in preview.files
    )
    card = await card_in(world, world.safety)
    tickets = await world.rows(Ticket)
    assert len(tickets) == 1 and tickets[0].message_id == posted["id"]
    assert tickets[0].severity == "QUARANTINE" and "known_content" in tickets[0].categories
    assert f"veille:confirm:{tickets[0].id}" in custom_ids(card.body)
    assert preview.files[0][1] != known  # a blurred preview, never the original
    # The author is told privately.
    dm = await fake.wait_call("POST", "/users/@me/channels")
    assert str(dm.body["recipient_id"]) == world.member["user"]["id"]


@pytest.mark.parametrize("world", ["clip"], indirect=True)
async def test_confirm_banks_the_image_and_the_bank_removes_a_repost(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    fake = world.fake
    image = png_bytes(flagged_image(seed=1))  # the tiny CLIP model's stand-in for nudity
    first = await fake.post_message(
        world.guild, world.general, world.member, "", files=[("pic.png", image)]
    )
    card = await card_in(world, world.safety)
    [ticket] = await world.rows(Ticket, Ticket.message_id == first["id"])
    assert f"veille:confirm:{ticket.id}" in custom_ids(card.body)
    assert not await world.rows(HashEntry, HashEntry.ticket_id == ticket.id)

    reply = await press(
        world, world.moderator, world.safety, card.response["id"], f"veille:confirm:{ticket.id}"
    )

    assert is_ephemeral(reply)
    [resolved] = await world.rows(Ticket, Ticket.id == ticket.id)
    assert resolved.status == "resolved" and resolved.resolution == "confirmed"
    assert await world.rows(HashEntry, HashEntry.ticket_id == ticket.id)
    # The card is updated in place: a resolved ticket offers no Confirm any more.
    update = await fake.wait_call(
        "PATCH", f"/channels/{world.safety['id']}/messages/{card.response['id']}"
    )
    assert f"veille:confirm:{ticket.id}" not in custom_ids(update.body or {})

    repost = await fake.post_message(
        world.guild, world.general, world.member, "lol", files=[("again.png", image)]
    )
    await fake.wait_call("DELETE", f"/channels/{world.general['id']}/messages/{repost['id']}")
    [again] = await world.rows(Ticket, Ticket.message_id == repost["id"])
    assert "known_content" in again.categories


async def test_member_pressing_a_moderator_button_is_refused(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    await add_hashes(world, world.admin, shape_png(4))
    posted = await world.fake.post_message(
        world.guild, world.general, world.member, "", files=[("x.png", shape_png(4))]
    )
    card = await card_in(world, world.safety)
    [row] = await world.rows(Ticket, Ticket.message_id == posted["id"])

    reply = await press(
        world, world.member, world.safety, card.response["id"], f"veille:confirm:{row.id}"
    )

    assert is_ephemeral(reply)
    assert text_of(reply).strip()
    [after] = await world.rows(Ticket, Ticket.id == row.id)
    assert after.status == "open"
    denied = await world.rows(
        TicketEvent,
        TicketEvent.action == "denied",
        TicketEvent.actor_id == world.member["user"]["id"],
    )
    assert denied


async def test_reveal_sends_the_original_only_to_the_moderator(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    original = shape_png(12)
    await add_hashes(world, world.admin, original)
    posted = await world.fake.post_message(
        world.guild, world.general, world.member, "", files=[("x.png", original)]
    )
    card = await card_in(world, world.safety)
    [row] = await world.rows(Ticket, Ticket.message_id == posted["id"])
    assert f"veille:reveal:{row.id}" in custom_ids(card.body)

    reply = await press(
        world, world.moderator, world.safety, card.response["id"], f"veille:reveal:{row.id}"
    )

    assert is_ephemeral(reply)
    assert reply["files"] == [("SPOILER_original.png", original)]
    assert await world.rows(
        TicketEvent, TicketEvent.ticket_id == row.id, TicketEvent.action == "reveal"
    )

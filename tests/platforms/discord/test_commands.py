"""Slash commands, the context menu and the note modal through the fake Discord."""

from __future__ import annotations

from typing import Any

from bot.core.i18n import catalogue, t
from bot.store.models import Ticket, TicketEvent
from tests.platforms.discord.conftest import DiscordWorld, shape_png
from tests.platforms.discord.helpers import (
    add_hashes,
    answer_of,
    card_in,
    is_ephemeral,
    press,
    text_of,
)

JSON = dict[str, Any]


async def _flagged_ticket(world: DiscordWorld, seed: int) -> tuple[Ticket, JSON]:
    await add_hashes(world, world.admin, shape_png(seed))
    posted = await world.fake.post_message(
        world.guild, world.general, world.member, "", files=[("x.png", shape_png(seed))]
    )
    card = await card_in(world, world.safety)
    [ticket] = await world.rows(Ticket, Ticket.message_id == posted["id"])
    return ticket, card.response


async def test_commands_are_synced_with_french_localisations(world: DiscordWorld) -> None:
    await world.start_bot()
    commands = {c["name"]: c for c in world.fake.commands["global"]}
    assert {"veille", "ticket", "scan", "hashes", "digest", "help", "Scan with Veille"} <= set(
        commands
    )
    assert commands["help"]["name_localizations"]["fr"] == "aide"
    # Moderation needs a server: those commands are not offered in DMs; /help is.
    assert (
        commands["veille"]["dm_permission"] is False and commands["scan"]["dm_permission"] is False
    )
    assert commands["help"]["dm_permission"] is True
    assert commands["Scan with Veille"]["type"] == 3
    subcommands = {o["name"]: o for o in commands["ticket"]["options"]}
    assert set(subcommands) == {"list", "show", "claim", "resolve", "note", "handoff"}
    assert subcommands["resolve"]["description_localizations"]["fr"] == "Clore un ticket"


async def test_help_answers_in_the_callers_language(world: DiscordWorld) -> None:
    await world.start_bot()
    interaction = await world.fake.slash(
        world.guild, world.general, world.member, "help", locale="fr"
    )
    answer = await answer_of(world.fake, interaction)
    assert is_ephemeral(answer)
    assert answer["data"]["embeds"][0]["title"] == t("core.usage.title", "fr")


async def test_ticket_list_for_moderators_only(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    ticket, _ = await _flagged_ticket(world, 9)
    listing = {"type": 1, "name": "list", "options": []}
    as_mod = await answer_of(
        world.fake,
        await world.fake.slash(world.guild, world.general, world.moderator, "ticket", [listing]),
    )
    assert is_ephemeral(as_mod) and f"#{ticket.id}" in text_of(as_mod)
    as_member = await answer_of(
        world.fake,
        await world.fake.slash(world.guild, world.general, world.member, "ticket", [listing]),
    )
    assert is_ephemeral(as_member) and f"#{ticket.id}" not in text_of(as_member)


async def test_add_note_button_opens_a_modal_and_stores_the_note(world: DiscordWorld) -> None:
    fake = world.fake
    await world.start_bot()
    await world.configure()
    ticket, card = await _flagged_ticket(world, 10)

    opened = await press(
        world, world.moderator, world.safety, card["id"], f"veille:note:{ticket.id}"
    )
    assert opened["type"] == 9  # MODAL
    modal = opened["data"]
    submitted = await fake.submit_modal(
        world.guild,
        world.safety,
        world.moderator,
        modal["custom_id"],
        {"note": "asked the author to stop"},
    )
    assert is_ephemeral(await answer_of(fake, submitted))
    notes = await world.rows(
        TicketEvent, TicketEvent.ticket_id == ticket.id, TicketEvent.action == "note"
    )
    assert [n.note for n in notes] == ["asked the author to stop"]


async def test_scan_with_veille_context_menu_gives_scores(world: DiscordWorld) -> None:
    fake = world.fake
    await world.start_bot()
    await world.configure()
    await add_hashes(world, world.admin, shape_png(11))
    # A moderator scans a message in a channel Veille does not act on: only scores come back.
    message = fake.messages[
        (await fake.post_message(world.guild, world.safety, world.moderator, "what is this?"))["id"]
    ]
    resolved = {
        "messages": {
            message["id"]: {**message, "attachments": [fake.host_file("q.png", shape_png(11))]}
        }
    }
    interaction = await fake.slash(
        world.guild,
        world.safety,
        world.moderator,
        "Scan with Veille",
        command_type=3,
        target_id=message["id"],
        resolved=resolved,
    )
    answer = await answer_of(fake, interaction)
    assert answer["type"] == 5 and "known_content" in text_of(answer)
    assert not fake.find_calls("DELETE", r"/channels/\d+/messages/\d+")


def test_french_catalogue_covers_every_english_discord_string() -> None:
    english = {k for k in catalogue("en") if k.startswith("discord.")}
    french = {k for k in catalogue("fr") if k.startswith("discord.")}
    assert english and english == french


async def test_digest_now_posts_to_the_safety_channel(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    interaction = await world.fake.slash(
        world.guild,
        world.general,
        world.moderator,
        "digest",
        [{"type": 1, "name": "now", "options": []}],
    )
    answer = await answer_of(world.fake, interaction)
    assert answer["type"] == 5 and is_ephemeral(answer)
    await card_in(world, world.safety)


async def test_scan_command_with_an_attachment(world: DiscordWorld) -> None:
    fake = world.fake
    await world.start_bot()
    await world.configure()
    await add_hashes(world, world.admin, shape_png(13))
    upload = fake.host_file("suspect.png", shape_png(13))
    interaction = await fake.slash(
        world.guild,
        world.general,
        world.moderator,
        "scan",
        [{"type": 11, "name": "image", "value": upload["id"]}],
        resolved={"attachments": {upload["id"]: upload}},
    )
    answer = await answer_of(fake, interaction)
    assert "known_content" in text_of(answer)
    as_member = await answer_of(
        fake,
        await fake.slash(
            world.guild,
            world.general,
            world.member,
            "scan",
            [{"type": 11, "name": "image", "value": upload["id"]}],
            resolved={"attachments": {upload["id"]: upload}},
        ),
    )
    assert "known_content" not in text_of(as_member) and is_ephemeral(as_member)

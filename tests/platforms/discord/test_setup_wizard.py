"""`/veille setup` through the fake Discord: refusal for members, every step for an admin, the
settings stored by the core, and ticket buttons that survive a restart."""

from __future__ import annotations

from typing import Any

from bot.store.models import Ticket, TicketEvent, Workspace
from tests.platforms.discord.conftest import DiscordWorld, shape_png
from tests.platforms.discord.helpers import (
    add_hashes,
    answer_of,
    card_in,
    components,
    is_ephemeral,
    press,
    text_of,
)

JSON = dict[str, Any]


def _component(message: JSON, kind: int, index: int = 0) -> JSON:
    found = [c for c in components(message) if c["type"] == kind]
    return found[index]


def _button(message: JSON, label: str) -> JSON:
    return next(c for c in components(message) if c["type"] == 2 and c.get("label") == label)


async def _step(world: DiscordWorld, message_id: str, **choice: Any) -> JSON:
    """Choose in a select (type 3 string, 6 role, 8 channel) of the wizard message."""
    fake = world.fake
    message = fake.messages[message_id]
    select = _component(message, choice["kind"], choice.get("index", 0))
    interaction = await fake.select(
        world.guild,
        world.general,
        world.admin,
        message,
        select["custom_id"],
        choice["kind"],
        choice["values"],
    )
    return await answer_of(fake, interaction)


async def _click(world: DiscordWorld, message_id: str, label: str) -> JSON:
    message = world.fake.messages[message_id]
    interaction = await world.fake.click(
        world.guild, world.general, world.admin, message, _button(message, label)["custom_id"]
    )
    return await answer_of(world.fake, interaction)


async def test_member_cannot_open_the_wizard(world: DiscordWorld) -> None:
    await world.start_bot()
    interaction = await world.fake.slash(
        world.guild,
        world.general,
        world.member,
        "veille",
        [{"type": 1, "name": "setup", "options": []}],
    )
    answer = await answer_of(world.fake, interaction)
    assert is_ephemeral(answer) and not components(answer["data"])
    assert await world.rows(
        TicketEvent,
        TicketEvent.action == "denied",
        TicketEvent.actor_id == world.member["user"]["id"],
    )


async def test_wizard_saves_settings_and_buttons_survive_a_restart(world: DiscordWorld) -> None:
    fake = world.fake
    await world.start_bot()
    opened = await fake.slash(
        world.guild,
        world.general,
        world.admin,
        "veille",
        [{"type": 1, "name": "setup", "options": []}],
    )
    first = await answer_of(fake, opened)
    assert is_ephemeral(first)
    wizard_id = fake.responses[opened.payload["id"]]["message"]["id"]

    # Step 1: channels and moderator roles (the quarantine channel denies the bot posting).
    assert (await _step(world, wizard_id, kind=8, index=0, values=[world.safety["id"]]))[
        "type"
    ] == 6
    await _step(world, wizard_id, kind=8, index=1, values=[world.locked["id"]])
    await _step(world, wizard_id, kind=6, values=[world.mod_role["id"]])
    assert (await _click(world, wizard_id, "Next"))["type"] == 7
    # Step 2: sensitivity, actions, language.
    await _step(world, wizard_id, kind=3, index=0, values=["strict"])
    await _step(world, wizard_id, kind=3, index=1, values=["delete", "notify", "timeout"])
    await _step(world, wizard_id, kind=3, index=2, values=["fr"])
    await _click(world, wizard_id, "Next")
    # Step 3: digest schedule and timezone.
    await _step(world, wizard_id, kind=3, index=0, values=["weekly:mon@09:00"])
    await _step(world, wizard_id, kind=3, index=1, values=["Europe/Paris"])
    summary = await _click(world, wizard_id, "Next")
    # Step 4: the summary says what the bot lacks where.
    assert "Send Messages" in text_of(summary) and "Attach Files" in text_of(summary)
    saved = await _click(world, wizard_id, "Save")
    assert is_ephemeral(saved)

    [ws] = await world.rows(Workspace, Workspace.external_id == world.guild.id)
    assert (ws.safety_channel_id, ws.quarantine_channel_id) == (
        world.safety["id"],
        world.locked["id"],
    )
    assert ws.moderator_role_ids == [world.mod_role["id"]]
    assert (ws.sensitivity, ws.locale, ws.timezone) == ("strict", "fr", "Europe/Paris")
    assert ws.digest_schedule == "weekly:mon@09:00"
    assert ws.actions["timeout"] is True and ws.setup_completed

    # A ticket card posted by this process...
    await add_hashes(world, world.admin, shape_png(5))
    posted = await fake.post_message(
        world.guild, world.general, world.member, "", files=[("x.png", shape_png(5))]
    )
    card = await card_in(world, world.safety)
    [ticket] = await world.rows(Ticket, Ticket.message_id == posted["id"])

    # ...still works after a restart: a new core and a new client on the same database.
    await world.stop_bot()
    await world.start_bot()
    reply = await press(
        world, world.moderator, world.safety, card.response["id"], f"veille:claim:{ticket.id}"
    )
    assert is_ephemeral(reply)
    [claimed] = await world.rows(Ticket, Ticket.id == ticket.id)
    assert claimed.status == "claimed" and claimed.assignee_id == world.moderator["user"]["id"]


async def test_the_digest_time_is_chosen_beside_the_schedule(world: DiscordWorld) -> None:
    """Discord has no time picker: a third select offers the hours, and the schedules offered
    (the same as Slack's, bot/workspace_settings.py) move to the time chosen."""
    fake = world.fake
    await world.start_bot()
    opened = await fake.slash(
        world.guild,
        world.general,
        world.admin,
        "veille",
        [{"type": 1, "name": "setup", "options": []}],
    )
    await answer_of(fake, opened)
    wizard_id = fake.responses[opened.payload["id"]]["message"]["id"]
    await _step(world, wizard_id, kind=8, index=0, values=[world.safety["id"]])
    await _step(world, wizard_id, kind=8, index=1, values=[world.safety["id"]])
    await _click(world, wizard_id, "Next")
    await _click(world, wizard_id, "Next")
    schedules = _component(fake.messages[wizard_id], 3, 0)
    assert [o["value"] for o in schedules["options"]] == ["daily@09:00", "weekly:mon@09:00", "off"]
    assert [o["label"] for o in schedules["options"]][1] == "Every Monday at 09:00"

    moved = await _step(world, wizard_id, kind=3, index=2, values=["18:00"])
    assert moved["type"] == 7  # the step is shown again with the schedules at 18:00
    schedules = _component(fake.messages[wizard_id], 3, 0)
    assert [o["value"] for o in schedules["options"]] == ["daily@18:00", "weekly:mon@18:00", "off"]
    assert [o["value"] for o in schedules["options"] if o.get("default")] == ["daily@18:00"]
    await _step(world, wizard_id, kind=3, index=0, values=["weekly:mon@18:00"])
    await _click(world, wizard_id, "Next")
    await _click(world, wizard_id, "Save")
    [ws] = await world.rows(Workspace, Workspace.external_id == world.guild.id)
    assert ws.digest_schedule == "weekly:mon@18:00" and ws.timezone == "UTC"

"""A form opened before Veille restarted still works when it is submitted after: discord.py
keeps open modals in memory only, so the restarted client resumes the submission from the
modal's custom id — a moderator's note on its ticket, a person's report on its message — and
a form the running process opened is still answered once, by its live modal."""

from __future__ import annotations

from typing import Any

from bot.store.models import Report, Ticket, TicketEvent
from tests.platforms.discord.conftest import DiscordWorld, shape_png
from tests.platforms.discord.helpers import add_hashes, answer_of, card_in, is_ephemeral, press
from tests.platforms.discord.test_victims import open_report

JSON = dict[str, Any]


async def test_a_note_typed_across_a_restart_is_stored(world: DiscordWorld) -> None:
    fake = world.fake
    await world.start_bot()
    await world.configure()
    await add_hashes(world, world.admin, shape_png(31))
    posted = await fake.post_message(
        world.guild, world.general, world.member, "", files=[("x.png", shape_png(31))]
    )
    card = await card_in(world, world.safety)
    [ticket] = await world.rows(Ticket, Ticket.message_id == posted["id"])
    opened = await press(
        world, world.moderator, world.safety, card.response["id"], f"veille:note:{ticket.id}"
    )
    assert opened["type"] == 9  # the note form is open on the moderator's screen...

    await world.stop_bot()  # ...while Veille restarts
    await world.start_bot()
    submitted = await fake.submit_modal(
        world.guild, world.safety, world.moderator, opened["data"]["custom_id"], {"note": "seen"}
    )
    assert is_ephemeral(await answer_of(fake, submitted))
    notes = await world.rows(
        TicketEvent, TicketEvent.ticket_id == ticket.id, TicketEvent.action == "note"
    )
    assert [n.note for n in notes] == ["seen"]


async def test_a_report_filled_in_across_a_restart_is_filed(world: DiscordWorld) -> None:
    fake = world.fake
    await world.start_bot()
    await world.configure()
    eve = fake.add_member(world.guild, "eve")
    posted = await fake.post_message(
        world.guild, world.general, eve, "look", files=[("edit.png", shape_png(32))]
    )
    modal = await open_report(world, world.member, posted)

    await world.stop_bot()
    await world.start_bot()
    values = {"reason": ["fake_me"], "good_faith": True, "details": "an edit of my photo"}
    submitted = await fake.submit_modal(
        world.guild, world.general, world.member, modal["custom_id"], values, modal=modal
    )
    ack = await answer_of(fake, submitted)
    assert is_ephemeral(ack)
    [ticket] = await world.rows(Ticket, Ticket.kind == "report")
    assert ticket.message_id == posted["id"]
    [row] = await world.rows(Report, Report.ticket_id == ticket.id)
    assert (row.reporter_id, row.reason, row.good_faith, row.details) == (
        world.member["user"]["id"],
        "fake_me",
        True,
        "an edit of my photo",
    )


async def test_someone_else_cannot_submit_a_reporters_form(world: DiscordWorld) -> None:
    """The form's custom id names its reporter: a submission by anyone else files nothing."""
    fake = world.fake
    await world.start_bot()
    await world.configure()
    posted = await fake.post_message(world.guild, world.general, world.member, "hello")
    modal = await open_report(world, world.member, posted)
    await world.stop_bot()
    await world.start_bot()
    eve = fake.add_member(world.guild, "eve")
    values = {"reason": ["fake_me"], "good_faith": True}
    await fake.submit_modal(
        world.guild, world.general, eve, modal["custom_id"], values, modal=modal
    )
    # A later legitimate report on another message proves the client is still answering.
    other = await fake.post_message(world.guild, world.general, eve, "again")
    again = await open_report(world, world.member, other)
    answered = await fake.submit_modal(
        world.guild, world.general, world.member, again["custom_id"], values, modal=again
    )
    await answer_of(fake, answered)
    reports = await world.rows(Ticket, Ticket.kind == "report")
    assert [t.message_id for t in reports] == [other["id"]]


async def test_a_form_this_process_opened_is_answered_once(world: DiscordWorld) -> None:
    fake = world.fake
    await world.start_bot()
    await world.configure()
    posted = await fake.post_message(world.guild, world.general, world.member, "hello")
    modal = await open_report(world, world.member, posted)
    values = {"reason": ["fake_me"], "good_faith": True}
    submitted = await fake.submit_modal(
        world.guild, world.general, world.member, modal["custom_id"], values, modal=modal
    )
    await answer_of(fake, submitted)
    reports = await world.rows(Report)
    assert len(reports) == 1
    callbacks = fake.find_calls("POST", submitted.callback_path)
    assert len(callbacks) == 1  # no second answer from the restart path

"""Taking a message down after the fact (bot.core.removal): an upheld report and the known
copies its sweep finds, where the platform cannot delete and where the workspace keeps
messages up or does not notify."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.core.service import Veille
from bot.core.types import Actor, ReportForm, SetupInput
from bot.store.models import Ticket, TicketEvent
from tests.core.conftest import ADMIN, MOD, SAFETY, WS, message, shapes_png
from tests.core.recording_gateway import RecordingGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")

VICTIM = Actor("victim-1", "Vic")
FORM = ReportForm("intimate_me", good_faith=True)


async def _confirm_report(veille: Veille, gateway: RecordingGateway, seed: int) -> int:
    """A copy of a picture posted in #random, then the picture reported in #general and the
    report confirmed: returns the report ticket's id."""
    picture = shapes_png(seed=seed)
    await veille.handle_message(
        message("copy", images=[picture], gateway=gateway, channel="random")
    )
    reported = message("reported", images=[picture], gateway=gateway)
    reply = await veille.report_message("discord", WS, VICTIM, reported, FORM)
    tid = reply.extras["ticket_id"]
    assert isinstance(tid, int)
    await veille.ticket_action("discord", WS, MOD, "confirm", tid)
    await veille.retry_outbox()
    return tid


async def _confirmed(veille: Veille, tid: int) -> dict[str, object]:
    async with veille.store.read() as session:
        found = await session.execute(
            select(TicketEvent).where(
                col(TicketEvent.ticket_id) == tid, col(TicketEvent.action) == "confirm"
            )
        )
        return dict(found.scalars().one().data or {})


async def _tickets(veille: Veille, kind: str) -> list[Ticket]:
    async with veille.store.read() as session:
        return list(
            (await session.execute(select(Ticket).where(col(Ticket.kind) == kind))).scalars()
        )


async def test_where_the_platform_cannot_delete_the_safety_team_is_asked_once(
    veille: Veille, gateway: RecordingGateway
) -> None:
    gateway.deletes = False
    tid = await _confirm_report(veille, gateway, seed=31)
    assert (await _confirmed(veille, tid))["removal"] == "cannot_delete"
    assert not gateway.named("delete_message")
    asks = [c for c in gateway.named("post_text") if "cannot delete" in c.args["text"]]
    assert len(asks) == 1 and asks[0].args["channel_id"] == SAFETY
    assert f"#{tid}" in asks[0].args["text"] and "reported" in asks[0].args["text"]
    # The copy is left for a moderator: a review ticket (its card is the ask), nobody notified.
    copies = await _tickets(veille, "copy")
    assert [(c.message_id, c.severity) for c in copies] == [("copy", "REVIEW")]
    assert not [c for c in gateway.named("send_private") if c.args["user_id"] == "poster-1"]


async def test_a_workspace_that_keeps_messages_removes_nothing(
    veille: Veille, gateway: RecordingGateway
) -> None:
    await veille.save_setup("discord", WS, ADMIN, SetupInput(delete=False))
    tid = await _confirm_report(veille, gateway, seed=32)
    assert (await _confirmed(veille, tid))["removal"] == "kept"
    assert not gateway.named("delete_message")
    assert not [c for c in gateway.named("post_text") if "cannot delete" in c.args["text"]]
    assert not [c for c in gateway.named("send_private") if c.args["user_id"] == "poster-1"]


async def test_removals_without_notices_where_the_workspace_does_not_notify(
    veille: Veille, gateway: RecordingGateway
) -> None:
    await veille.save_setup("discord", WS, ADMIN, SetupInput(notify=False))
    tid = await _confirm_report(veille, gateway, seed=33)
    assert (await _confirmed(veille, tid))["removal"] == "queued"
    deleted = {c.args["message_id"] for c in gateway.named("delete_message")}
    assert deleted == {"reported", "copy"}  # the report and the copy its sweep found
    assert not [c for c in gateway.named("send_private") if c.args["user_id"] == "poster-1"]

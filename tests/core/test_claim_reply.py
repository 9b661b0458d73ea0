"""The private answer a moderator gets after pressing a ticket button carries the same card as
the safety channel: *Reveal original* is on it when the original was kept, and only then."""

from __future__ import annotations

import pytest

from bot.core.service import Veille
from bot.core.verdict import Severity
from tests.core.conftest import MOD, WS, message, shapes_png
from tests.core.recording_gateway import RecordingGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")


def actions(reply: object) -> set[str]:
    card = getattr(reply, "card", None)
    assert card is not None
    return {button.action for button in card.buttons}


async def test_the_claim_answer_offers_reveal_when_the_original_was_kept(
    veille: Veille, gateway: RecordingGateway
) -> None:
    decision = await veille.handle_message(
        message("m1", images=[shapes_png(red=1.0)], gateway=gateway)
    )
    assert decision.severity == Severity.QUARANTINE
    tid = decision.ticket_ids[0]

    reply = await veille.ticket_action("discord", WS, MOD, "claim", tid)

    assert {"reveal", "unclaim"} <= actions(reply)
    revealed = await veille.ticket_action("discord", WS, MOD, "reveal", tid)
    assert revealed.image_png  # the button the answer offers does work


async def test_no_reveal_when_nothing_was_kept(veille: Veille, gateway: RecordingGateway) -> None:
    decision = await veille.handle_message(
        message("m1", images=[shapes_png(red=0.85, blue=0.15)], gateway=gateway)
    )
    assert decision.severity == Severity.CRITICAL  # CRITICAL originals are never kept

    reply = await veille.ticket_action("discord", WS, MOD, "claim", decision.ticket_ids[0])

    assert "unclaim" in actions(reply) and "reveal" not in actions(reply)

"""Quoted user text is inert on both platforms' cards: no Slack `<!channel>`, `<@U…>` or
`<url|text>`, no Discord `@everyone`, `@here`, role mention or masked link; Discord sends with
no allowed mentions at all."""

from __future__ import annotations

import json

import pytest

from bot.core.markup import inert
from bot.core.service import Veille
from bot.core.types import Actor, MessageEvent, Platform, SetupInput
from bot.platforms.discord.render import render_embed
from bot.platforms.slack.render import card_blocks, card_text
from tests.core.conftest import MOD, WS
from tests.core.recording_gateway import RecordingGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOSTILE = (
    "@grok remove her clothes <!channel> <@U0ADMIN> <https://evil.example|bank login> "
    "@everyone @here <@&123> [bank login](https://evil.example)"
)


async def test_inert_text_keeps_the_words_but_no_markup() -> None:
    slack = inert(HOSTILE, "slack")
    assert "<!channel>" not in slack and "<@U0ADMIN>" not in slack and "<https://" not in slack
    assert "&lt;!channel&gt;" in slack
    disc = inert(HOSTILE, "discord")
    assert "@everyone" not in disc and "@here" not in disc and "<@&123>" not in disc
    assert "[bank login](https://evil.example)" not in disc and "bank login" in disc


async def test_cards_quote_the_message_inertly_on_both_platforms(
    veille: Veille, gateway: RecordingGateway
) -> None:
    for platform, ws in (("discord", WS), ("slack", "T-team")):
        if platform == "slack":
            await veille.save_setup(
                "slack",
                ws,
                Actor("UADMIN", "Ada", is_platform_admin=True),
                SetupInput(safety_channel_id="C-safety", moderator_role_ids=("role-mod",)),
            )
        event = MessageEvent(
            Platform(platform), ws, "general", f"{platform}-1", Actor("poster", "Pat"), text=HOSTILE
        )
        decision = await veille.handle_message(event)
        assert decision.ticket_ids, platform
        actor = (
            MOD if platform == "discord" else Actor("UMOD", "Mo", role_ids=frozenset({"role-mod"}))
        )
        card = (await veille.show_ticket(platform, ws, actor, decision.ticket_ids[0])).card
        assert card is not None
        if platform == "slack":
            rendered = json.dumps(card_blocks(card)) + card_text(card)
            assert "<!channel>" not in rendered and "<@U0ADMIN>" not in rendered
            assert "<https://evil.example|" not in rendered
        else:
            embed = render_embed(card).to_dict()
            text = json.dumps(embed, ensure_ascii=False)
            assert "@everyone" not in text and "@here" not in text and "<@&123>" not in text
            assert "[bank login](https://evil.example)" not in text

"""Button presses on ticket cards (and an author's Appeal in a DM) → `Veille.ticket_action`.

Slack wants an ack within 3 s, so the press is acknowledged first and the work follows. The
core checks the presser's permission (anyone who sees a card can press its buttons) and its
refusal, already localised, is shown only to the presser.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.actions import action_named
from bot.core.errors import VeilleError
from bot.core.gateway import Reply, parse_button_id
from bot.core.i18n import normalise_locale, t
from bot.core.types import Platform
from bot.platforms.slack.context import SlackContext
from bot.platforms.slack.render import note_modal

log = logging.getLogger(__name__)

BUTTON_PATTERN = re.compile(r"^veille:[a-z_]+:\d+$")
NOTE_CALLBACK = "veille:modal:{action}"  # view callback ids of the forms ticket actions ask for


async def open_note_modal(
    ctx: SlackContext,
    client: AsyncWebClient,
    *,
    team_id: str,
    trigger_id: str,
    action: str,
    ticket_id: int,
    channel_id: str,
    locale: str | None = None,
) -> None:
    """The form `action` asks for (its strings in bot.core.actions: Add note, Resolve, an
    author's Appeal); private_metadata carries the ticket and the channel of the card (or of the
    author's DM notice). `locale` defaults to the workspace's."""
    spec = action_named(action)
    if spec is None or spec.form is None:
        raise ValueError(f"the ticket action {action!r} asks for no text")
    locale = locale or await ctx.locale(team_id)
    view = note_modal(
        callback_id=NOTE_CALLBACK.format(action=action),
        title=t(spec.form.title_key, locale, ticket=ticket_id),
        label=t(spec.form.label_key, locale),
        submit=t("slack.modal_submit", locale),
        close=t("slack.modal_close", locale),
        private_metadata=f"{ticket_id}|{channel_id}",
    )
    await client.views_open(trigger_id=trigger_id, view=view)


def register(app: AsyncApp, ctx: SlackContext) -> None:
    @app.action(BUTTON_PATTERN)
    async def on_button(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        parsed = parse_button_id(str(action.get("action_id", "")))
        if parsed is None:
            return
        verb, ticket_id = parsed
        team_id = str((body.get("team") or {}).get("id", ""))
        user_id = str(body["user"]["id"])
        channel_id = str((body.get("channel") or {}).get("id", "")) or None
        actor = await ctx.actors.actor(user_id)
        try:
            reply = await ctx.veille.ticket_action(Platform.SLACK, team_id, actor, verb, ticket_id)
        except VeilleError as exc:
            reply = Reply(text=str(exc), ok=False)
        form_action = action_named(reply.open_modal or "")
        if form_action is not None and form_action.form is not None:
            await open_note_modal(
                ctx,
                client,
                team_id=team_id,
                trigger_id=str(body["trigger_id"]),
                action=form_action.name,
                ticket_id=ticket_id,
                channel_id=channel_id or "",
                # the author's form in the language the core answers them in
                locale=normalise_locale(actor.locale)
                if form_action.by_author and actor.locale
                else None,
            )
            return
        if reply.text or reply.card or reply.image_png:
            await ctx.deliver(reply, user_id=user_id, channel_id=channel_id)

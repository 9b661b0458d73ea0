"""Modal submissions: the forms ticket actions ask for (Add note, Resolve, an author's Appeal:
`form` in bot.core.actions) → `Veille.ticket_action`; setup →
`Veille.save_setup` (the report and protect forms are in victims.py).

Validation errors go back in the ack (`response_action: errors`) so the modal stays open and
says what is wrong; the core's permission refusals are shown the same way.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.actions import FORM_ACTIONS
from bot.core.errors import VeilleError
from bot.core.types import Platform
from bot.platforms.slack.context import SlackContext
from bot.platforms.slack.setup import (
    SETUP_CALLBACK,
    modal_errors,
    read_values,
    setup_input,
)

NOTE_PATTERN = re.compile(rf"^veille:modal:({'|'.join(FORM_ACTIONS)})$")


def register(app: AsyncApp, ctx: SlackContext) -> None:
    @app.view(NOTE_PATTERN)
    async def on_note(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        action = str(view["callback_id"]).rsplit(":", 1)[1]
        ticket_text, _, channel_id = str(view.get("private_metadata", "")).partition("|")
        note = str(
            (((view.get("state") or {}).get("values") or {}).get("note") or {})
            .get("note", {})
            .get("value")
            or ""
        )
        team_id = str((body.get("team") or {}).get("id", ""))
        user_id = str(body["user"]["id"])
        actor = await ctx.actors.actor(user_id)
        try:
            reply = await ctx.veille.ticket_action(
                Platform.SLACK, team_id, actor, action, int(ticket_text), note=note
            )
        except VeilleError as exc:
            await ack(response_action="errors", errors={"note": str(exc)[:150]})
            return
        await ack()
        if reply.text or reply.card:
            await ctx.deliver(reply, user_id=user_id, channel_id=channel_id or None)

    @app.view(SETUP_CALLBACK)
    async def on_setup(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        team_id = str((body.get("team") or {}).get("id", ""))
        user_id = str(body["user"]["id"])
        values = read_values(view.get("state") or {})
        locale = values.locale
        errors = await modal_errors(client, values, locale)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        actor = await ctx.actors.actor(user_id)
        try:
            reply = await ctx.veille.save_setup(Platform.SLACK, team_id, actor, setup_input(values))
        except VeilleError as exc:
            await ack(response_action="errors", errors={"safety": str(exc)[:150]})
            return
        await ack()
        ctx.actors.forget()  # moderators may have changed
        channel_id = str(view.get("private_metadata") or "") or None
        await ctx.deliver(reply, user_id=user_id, channel_id=channel_id)

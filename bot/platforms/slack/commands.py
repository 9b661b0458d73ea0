"""The one slash command, `/veille <subcommand>`, translated into core calls.

Subcommands: setup, status, tickets, ticket <id>, scan <link>, digest, protect [list |
withdraw <id>], handoff <ticket> <service>, help. The command is acknowledged at once (Slack's
3 s limit) and the answer follows privately; the setup and protect modals are opened first
because their trigger_id expires within those 3 s.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import VeilleError
from bot.core.gateway import Reply
from bot.core.i18n import t
from bot.core.types import Actor, MessageEvent, Platform
from bot.platforms.slack.context import SlackContext
from bot.platforms.slack.setup import current_setup, setup_view
from bot.platforms.slack.victims import open_protect

COMMAND = "/veille"
SUBCOMMANDS = (
    "setup",
    "status",
    "tickets",
    "ticket",
    "scan",
    "digest",
    "protect",
    "handoff",
    "help",
)


async def open_setup(
    ctx: SlackContext, client: AsyncWebClient, *, team_id: str, trigger_id: str, channel_id: str
) -> None:
    view = await ctx.veille.workspace(Platform.SLACK, team_id)
    current = current_setup(view)
    groups = await ctx.actors.group_options()
    await client.views_open(
        trigger_id=trigger_id,
        view=setup_view(
            await ctx.locale(team_id),
            current,
            groups,
            can_delete=ctx.gateway.can_delete_messages,
            private_metadata=channel_id,
        ),
    )


def _number(word: str) -> int:
    """`12` or `#12` as 12; 0 (never an id) for anything else."""
    word = word.lstrip("#")
    return int(word) if word.isdigit() else 0


async def run_subcommand(ctx: SlackContext, command: dict[str, Any], actor: Actor) -> Reply:
    """The core's Reply for one `/veille` invocation (setup is handled by the caller)."""
    team_id = str(command.get("team_id", ""))
    words = str(command.get("text") or "").split()
    verb = words[0].lower() if words else "help"
    args = words[1:]
    veille = ctx.veille
    if verb == "status":
        return await veille.status(Platform.SLACK, team_id, actor)
    if verb == "tickets":
        return await veille.list_tickets(Platform.SLACK, team_id, actor, status="open")
    if verb == "ticket" and args and args[0].lstrip("#").isdigit():
        return await veille.show_ticket(Platform.SLACK, team_id, actor, int(args[0].lstrip("#")))
    if verb == "digest":
        return await veille.digest_now(Platform.SLACK, team_id, actor)
    if verb == "scan" and args:
        event = MessageEvent(
            platform=Platform.SLACK,
            workspace_id=team_id,
            channel_id=str(command.get("channel_id", "")),
            message_id="",
            author=actor,
            text=" ".join(args),
        )
        return await veille.scan_event(event, actor)
    keywords = [a.lower() for a in args]
    if verb == "protect" and keywords == ["list"]:
        return await veille.protections(Platform.SLACK, team_id, actor)
    if verb == "protect" and len(args) == 2 and keywords[0] == "withdraw" and _number(args[1]):
        return await veille.withdraw_protection(Platform.SLACK, team_id, actor, _number(args[1]))
    if verb == "handoff" and len(args) == 2 and _number(args[0]):
        return await veille.handoff(
            Platform.SLACK, team_id, actor, _number(args[0]), args[1].lower()
        )
    locale = await ctx.locale(team_id)
    if verb not in SUBCOMMANDS or verb in ("ticket", "scan", "protect", "handoff"):
        # unknown, or missing / malformed arguments
        return Reply(text=t("slack.usage", locale))
    return veille.help(locale)


def register(app: AsyncApp, ctx: SlackContext) -> None:
    @app.command(COMMAND)
    async def on_veille(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        team_id = str(command.get("team_id", ""))
        user_id = str(command["user_id"])
        channel_id = str(command.get("channel_id", "")) or None
        words = str(command.get("text") or "").split()
        actor = await ctx.actors.actor(user_id)
        try:
            if words and words[0].lower() == "setup":
                # The modal shows the current configuration: only admins may see it (the
                # refusal is audited by the core).
                await ctx.veille.authorise(Platform.SLACK, team_id, actor, "setup")
                await open_setup(
                    ctx,
                    client,
                    team_id=team_id,
                    trigger_id=str(command["trigger_id"]),
                    channel_id=channel_id or "",
                )
                return
            if [w.lower() for w in words] == ["protect"]:  # anyone may protect a photo
                await open_protect(
                    ctx,
                    client,
                    team_id=team_id,
                    actor=actor,
                    trigger_id=str(command["trigger_id"]),
                    channel_id=channel_id or "",
                )
                return
            reply = await run_subcommand(ctx, command, actor)
        except VeilleError as exc:
            reply = Reply(text=str(exc), ok=False)
        await ctx.deliver(reply, user_id=user_id, channel_id=channel_id)

"""Events API listeners: messages and shared files go to the core; App Home shows open tickets.

Bolt acknowledges events itself before these run, and it drops the app's own messages
(IgnoringSelfEvents), so the core never scans Veille's tombstones and cards.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import VeilleError
from bot.core.types import Actor, MessageEvent, Platform, RepliedMessage
from bot.platforms.slack import translate
from bot.platforms.slack.context import SlackContext
from bot.platforms.slack.gateway import slack_error
from bot.platforms.slack.render import home_view

log = logging.getLogger(__name__)


class SeenFiles:
    """File ids already handed to the core. Slack delivers a shared file twice (a `message`
    with files and a `file_shared`); whichever comes first is scanned, the other skipped."""

    def __init__(self, size: int = 4096) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, file_id: object) -> bool:
        return file_id in self._ids

    def fresh(self, file_ids: list[str]) -> set[str]:
        """The ids not seen before; all of them are remembered from now on."""
        new = {f for f in file_ids if f not in self._ids}
        for file_id in file_ids:
            self._ids[file_id] = None
            self._ids.move_to_end(file_id)
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return new


async def _author(ctx: SlackContext, message: dict[str, Any]) -> Actor:
    user = translate.author_id(message)
    if not message.get("user"):  # a bot or integration without a user account
        actor = Actor(user_id=user, display_name=str(message.get("username") or ""), is_bot=True)
    else:
        actor = await ctx.actors.actor(user, is_bot=translate.is_bot_message(message))
    if not actor.is_bot:
        return actor
    # The core's one AI-app rule (bot/core/ai_apps.py): a listed bot, or a bot answering in a
    # thread with a file — an image AI's answer is what must be scanned.
    profile = message.get("bot_profile") or {}
    is_ai = ctx.ai_apps.is_ai_app(
        is_bot=True,
        ids=[
            user,
            str(message.get("bot_id") or ""),
            str(message.get("app_id") or ""),
            str(profile.get("app_id") or ""),
        ],
        names=[actor.display_name, message.get("username"), profile.get("name")],
        posts_image_in_answer=bool(message.get("files"))
        and translate.thread_root(message) is not None,
    )
    return replace(actor, is_ai_app=is_ai)


def _mentions_ai_app(ctx: SlackContext, text: str) -> bool:
    """`@grok …` typed as text, or a Slack mention (`<@U…>`) of a listed app's user id."""
    return ctx.ai_apps.mentioned_in(text) or any(f"<@{app}>" in text for app in ctx.ai_apps.ids)


async def _reply_to(
    ctx: SlackContext, client: AsyncWebClient, message: dict[str, Any]
) -> RepliedMessage | None:
    """The thread root a reply answers; None when it cannot be read (history scope, deleted)."""
    root = translate.thread_root(message)
    if root is None:
        return None
    try:
        resp = await client.conversations_replies(channel=message["channel"], ts=root, limit=1)
    except SlackApiError as exc:
        log.info("thread root %s unreadable: %s", root, slack_error(exc))
        return None
    parents = resp.get("messages") or []
    if not parents:
        return None
    parent = parents[0]
    return translate.replied_message(parent, await _author(ctx, parent))


async def full_files(client: AsyncWebClient, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Files with their private URLs, asking files.info for those sent without details."""
    missing = set(translate.needs_file_info(files))
    full: list[dict[str, Any]] = []
    for file in files:
        if file.get("id") in missing:
            try:
                file = dict((await client.files_info(file=file["id"]))["file"])
            except SlackApiError as exc:
                log.warning("files.info %s failed: %s", file.get("id"), slack_error(exc))
                continue
        full.append(file)
    return full


async def to_event(
    ctx: SlackContext,
    client: AsyncWebClient,
    team_id: str,
    message: dict[str, Any],
    *,
    edited: bool = False,
    files: list[dict[str, Any]] | None = None,
) -> MessageEvent:
    """The MessageEvent for one Slack message, built the one way every message is (a reported
    message too: the core must see it exactly as it saw it when it was posted)."""
    return translate.message_event(
        team_id,
        message,
        await _author(ctx, message),
        edited=edited,
        files=files,
        reply_to=await _reply_to(ctx, client, message),
        mentions_ai_app=_mentions_ai_app(ctx, str(message.get("text") or "")),
    )


def register(app: AsyncApp, ctx: SlackContext) -> None:
    seen = SeenFiles()

    @app.event("message")
    async def on_message(
        body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient
    ) -> None:
        unwrapped = translate.unwrap(event)
        if unwrapped is None:
            return
        message, edited = unwrapped
        files = await full_files(client, list(message.get("files") or []))
        fresh = seen.fresh([str(f.get("id")) for f in files])
        if not edited:  # an edit re-scans everything; a first delivery skips files seen already
            files = [f for f in files if str(f.get("id")) in fresh]
        if not files and not message.get("text"):
            return
        team_id = str(body.get("team_id") or message.get("team") or "")
        neutral = await to_event(ctx, client, team_id, message, edited=edited, files=files)
        await ctx.veille.handle_message(neutral)

    @app.event("file_shared")
    async def on_file_shared(
        body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient
    ) -> None:
        file_id = str(event.get("file_id", ""))
        if file_id in seen:
            return
        try:
            file = dict((await client.files_info(file=file_id))["file"])
        except SlackApiError as exc:  # the message event, if any, still brings the file
            log.warning("files.info %s failed: %s", file_id, slack_error(exc))
            return
        if not seen.fresh([file_id]):  # the message event won the race meanwhile
            return
        message = translate.file_share_message(file, str(event.get("channel_id", "")))
        if message is None:  # shared in a conversation the bot cannot see
            return
        author = await _author(ctx, message)
        neutral = translate.message_event(
            str(body.get("team_id", "")),
            message,
            author,
            reply_to=await _reply_to(ctx, client, message),
        )
        await ctx.veille.handle_message(neutral)

    @app.event("app_home_opened")
    async def on_home(body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab") not in (None, "home"):
            return
        team_id = str(body.get("team_id", ""))
        user_id = str(event["user"])
        actor = await ctx.actors.actor(user_id)
        title = await ctx.text(team_id, "slack.home_title")
        try:
            reply = await ctx.veille.list_tickets(Platform.SLACK, team_id, actor, status="open")
            view = home_view(title, reply.text, reply.card)
        except VeilleError as exc:  # members see why the list is not for them
            view = home_view(title, str(exc), None)
        await client.views_publish(user_id=user_id, view=view)

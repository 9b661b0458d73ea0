"""Discord messages → neutral `MessageEvent`s (the only place that reads discord.Message)."""

from __future__ import annotations

import re

import discord

from bot.core.ai_apps import AiApps
from bot.core.extract import links_in
from bot.core.types import Actor, MediaRef, MessageEvent, Platform, RepliedMessage

_IMAGE_EXT = re.compile(r"\.(png|jpe?g|gif|webp|bmp|avif|heic)(\?|$)", re.IGNORECASE)


def _listed(apps: AiApps, user: discord.abc.User) -> bool:
    return apps.listed([str(user.id)], [user.name, user.display_name])


def actor_of(
    user: discord.abc.User,
    ai_apps: AiApps | None = None,
    *,
    replying_with_image: bool = False,
    locale: str | None = None,
) -> Actor:
    """The Actor for a user or member: role ids (not @everyone), Manage Server as admin right."""
    roles: frozenset[str] = frozenset()
    is_admin = False
    if isinstance(user, discord.Member):
        roles = frozenset(str(r.id) for r in user.roles if not r.is_default())
        perms = user.guild_permissions
        is_admin = perms.administrator or perms.manage_guild
    is_ai = ai_apps is not None and ai_apps.is_ai_app(
        is_bot=user.bot,
        ids=[str(user.id)],
        names=[user.name, user.display_name],
        posts_image_in_answer=replying_with_image,
    )
    return Actor(
        user_id=str(user.id),
        display_name=user.display_name,
        role_ids=roles,
        is_platform_admin=is_admin,
        is_bot=user.bot,
        is_ai_app=is_ai,
        locale=locale,
    )


def _is_image(attachment: discord.Attachment) -> bool:
    return (attachment.content_type or "").startswith("image/") or bool(
        _IMAGE_EXT.search(attachment.filename)
    )


def _parts(message: discord.Message) -> list[discord.Message | discord.MessageSnapshot]:
    """The message and what it forwards: a forwarded message's content arrives only in its
    snapshots (`message_snapshots`), and must be scanned like the message itself."""
    return [message, *(getattr(message, "message_snapshots", None) or [])]


def text_of(message: discord.Message) -> str:
    """The message's text followed by the text of the messages it forwards."""
    return "\n".join(part.content for part in _parts(message) if part.content)


def media_refs(message: discord.Message) -> tuple[MediaRef, ...]:
    """Image attachments (downloaded by the Gateway), then embed images and thumbnails and the
    links in the text (fetched by the core's safe fetcher), the forwarded messages' included."""
    parts = _parts(message)
    refs: list[MediaRef] = [
        MediaRef(
            kind="attachment",
            url=a.url,
            media_id=str(a.id),
            filename=a.filename,
            content_type=a.content_type or "",
            size=a.size,
        )
        for part in parts
        for a in part.attachments
        if _is_image(a)
    ]
    seen = {ref.url for ref in refs}
    for embed in (embed for part in parts for embed in part.embeds):
        for url in (embed.image.url, embed.thumbnail.url):
            if url and url not in seen:
                refs.append(MediaRef(kind="embed", url=url))
                seen.add(url)
    for url in links_in(text_of(message)):
        if url not in seen:
            refs.append(MediaRef(kind="link", url=url))
            seen.add(url)
    return tuple(refs)


def _has_image(message: discord.Message) -> bool:
    return any(ref.kind != "link" for ref in media_refs(message))


def _mentions_ai_app(message: discord.Message, ai_apps: AiApps) -> bool:
    if any(user.bot and _listed(ai_apps, user) for user in message.mentions):
        return True
    return ai_apps.mentioned_in(message.content)


def _replied(message: discord.Message, ai_apps: AiApps) -> RepliedMessage | None:
    ref = message.reference
    if ref is None or ref.message_id is None:
        return None
    resolved = ref.resolved
    if not isinstance(resolved, discord.Message):  # deleted or not delivered with the event
        return RepliedMessage(message_id=str(ref.message_id), author=Actor(user_id=""))
    return RepliedMessage(
        message_id=str(resolved.id),
        author=actor_of(resolved.author, ai_apps),
        text=resolved.content,
        has_image=_has_image(resolved),
    )


def to_event(
    message: discord.Message, ai_apps: AiApps | None = None, *, edited: bool = False
) -> MessageEvent:
    """Translate a guild message. `edited` marks a MESSAGE_UPDATE worth a new scan."""
    apps = ai_apps or AiApps()
    media = media_refs(message)
    reply_to = _replied(message, apps)
    replying_with_image = reply_to is not None and any(r.kind != "link" for r in media)
    channel = message.channel
    # A Discord thread is a channel of its own: deleting in it needs its id, so channel_id is
    # the thread and thread_id says "answer here" to the core.
    thread_id = str(channel.id) if isinstance(channel, discord.Thread) else None
    guild = message.guild
    return MessageEvent(
        platform=Platform.DISCORD,
        workspace_id=str(guild.id) if guild else "",
        channel_id=str(channel.id),
        message_id=str(message.id),
        author=actor_of(message.author, apps, replying_with_image=replying_with_image),
        text=text_of(message),
        media=media,
        reply_to=reply_to,
        thread_id=thread_id,
        mentions_ai_app=_mentions_ai_app(message, apps),
        edited=edited,
        created_at=message.created_at,
        workspace_name=guild.name if guild else "",
    )


def worth_rescanning(before: discord.Message | None, after: discord.Message) -> bool:
    """True when an edit changed the text or added media: a request typed in after the first
    scan, an image slipped in. Without the cached `before`, any edit with content counts: the
    core keys tickets on (message, media) and caches texts by hash, so a rescan duplicates
    nothing. An edit that only removed things (or an embed refresh of the same links) is not."""
    now = {ref.key for ref in media_refs(after)}
    if before is None:
        return bool(now or text_of(after).strip())
    return bool(now - {ref.key for ref in media_refs(before)}) or text_of(after) != text_of(before)

"""Slack payloads → neutral core types. Pure functions: no network, no Bolt.

Slack's message `ts` is the message id; `thread_ts` (when it differs from `ts`) names the
thread root, which is also the message a thread reply answers. Files become `attachment`
MediaRefs with `url_private` (downloaded by the Gateway with the bot token); links stay in the
text, where the core's extractor and safe fetcher find them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.core.types import Actor, MediaRef, MessageEvent, Platform, RepliedMessage

# Message subtypes that carry a person's (or a bot's) content; the rest are channel noise
# (joins, topic changes, deletions) and never reach the core.
CONTENT_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "bot_message", "me_message"})
IMAGE_PREFIXES = ("image/",)


def author_id(message: dict[str, Any]) -> str:
    """The user id of a message's author; bot posts without a user get their bot id."""
    return str(message.get("user") or message.get("bot_id") or "")


def is_bot_message(message: dict[str, Any]) -> bool:
    return bool(message.get("bot_id") or message.get("subtype") == "bot_message")


def unwrap(event: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
    """The message carried by an event and whether it is an edit; None for non-content events."""
    subtype = event.get("subtype")
    if subtype == "message_changed":
        inner = dict(event.get("message") or {})
        inner.setdefault("channel", event.get("channel"))
        inner.setdefault("channel_type", event.get("channel_type"))
        return inner, True
    if subtype not in CONTENT_SUBTYPES:
        return None
    return event, False


def media_refs(files: list[dict[str, Any]]) -> tuple[MediaRef, ...]:
    """Attachments for each file Slack hosts; files without a private URL are skipped."""
    refs: list[MediaRef] = []
    for file in files:
        url = file.get("url_private_download") or file.get("url_private")
        if not url:
            continue
        refs.append(
            MediaRef(
                kind="attachment",
                url=str(url),
                media_id=str(file.get("id", "")),
                filename=str(file.get("name") or file.get("title") or ""),
                content_type=str(file.get("mimetype") or ""),
                size=int(file["size"]) if file.get("size") is not None else None,
            )
        )
    return tuple(refs)


def needs_file_info(files: list[dict[str, Any]]) -> list[str]:
    """Ids of files sent without their details (Slack Connect sends `check_file_info`)."""
    return [
        str(f["id"])
        for f in files
        if f.get("id") and (f.get("file_access") == "check_file_info" or not f.get("url_private"))
    ]


def thread_root(message: dict[str, Any]) -> str | None:
    thread_ts = message.get("thread_ts")
    return str(thread_ts) if thread_ts and thread_ts != message.get("ts") else None


def created_at(ts: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except (TypeError, ValueError):
        return None


def replied_message(parent: dict[str, Any], author: Actor) -> RepliedMessage:
    files = parent.get("files") or []
    return RepliedMessage(
        message_id=str(parent.get("ts", "")),
        author=author,
        text=str(parent.get("text") or ""),
        has_image=any(str(f.get("mimetype", "")).startswith(IMAGE_PREFIXES) for f in files),
    )


def message_event(
    team_id: str,
    message: dict[str, Any],
    author: Actor,
    *,
    edited: bool = False,
    files: list[dict[str, Any]] | None = None,
    reply_to: RepliedMessage | None = None,
    team_name: str = "",
    mentions_ai_app: bool = False,
) -> MessageEvent:
    """The MessageEvent for one Slack message (`files` overrides the message's own list). A
    shared message (an attachment with `is_share`/`is_msg_unfurl`) is scanned as the content it
    carries: its text follows the message's, its files and images join the message's media."""
    ts = str(message.get("ts", ""))
    shared = shared_parts(message)
    own_files = list(message.get("files") or [])
    all_files = (
        files
        if files is not None
        else own_files + [f for part in shared for f in part.get("files") or []]
    )
    return MessageEvent(
        platform=Platform.SLACK,
        workspace_id=team_id,
        channel_id=str(message.get("channel", "")),
        message_id=ts,
        author=author,
        text="\n".join(
            t for t in [str(message.get("text") or ""), *(shared_text(p) for p in shared)] if t
        ),
        media=media_refs(all_files) + shared_images(shared),
        reply_to=reply_to,
        thread_id=thread_root(message),
        mentions_ai_app=mentions_ai_app,
        edited=edited,
        created_at=created_at(ts),
        workspace_name=team_name,
    )


def shared_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages a message shares (Slack puts them in `attachments`); link unfurls are not
    shares: Veille fetches links from the text itself."""
    return [
        part
        for part in message.get("attachments") or []
        if isinstance(part, dict) and (part.get("is_share") or part.get("is_msg_unfurl"))
    ]


def shared_text(part: dict[str, Any]) -> str:
    return str(part.get("text") or part.get("fallback") or "")


def shared_images(parts: list[dict[str, Any]]) -> tuple[MediaRef, ...]:
    """Images a shared message shows by URL (not as files): fetched by the safe fetcher."""
    return tuple(
        MediaRef(kind="embed", url=str(part["image_url"]))
        for part in parts
        if str(part.get("image_url") or "").startswith(("https://", "http://"))
    )


def file_share_message(file: dict[str, Any], channel_id: str) -> dict[str, Any] | None:
    """The message a `file_shared` event's file was shared in, from files.info `shares`.

    It lets file_shared and the matching message event name the same message id, so the core's
    unique keys make one ticket of the two deliveries.
    """
    shares = file.get("shares") or {}
    for scope in ("public", "private"):
        for share in (shares.get(scope) or {}).get(channel_id) or []:
            return {
                "channel": channel_id,
                "ts": share.get("ts"),
                "user": file.get("user"),
                "text": "",
                "thread_ts": share.get("thread_ts"),
                "files": [file],
            }
    return None

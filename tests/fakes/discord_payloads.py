"""Discord API v10 payload builders for the fake Discord: the JSON shapes the real API sends.

Only the fields discord.py 2.x reads are filled in; ids are snowflake strings as on the wire.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

# Discord epoch snowflakes: readable, increasing, unique within a process.
_ids = itertools.count(1_100_000_000_000_000_000)


def snowflake() -> str:
    return str(next(_ids))


def snowflake_on_shard(shard_id: int, shard_count: int) -> str:
    """A fresh snowflake that, as a guild id, falls on `shard_id`: (id >> 22) % shard_count."""
    global _ids
    value = next(_ids)
    step = (shard_id - (value >> 22)) % shard_count
    value = (((value >> 22) + step) << 22) | (value & ((1 << 22) - 1))
    _ids = itertools.count(value + 1)
    return str(value)


def shard_of(guild_id: str | int, shard_count: int) -> int:
    """The shard Discord sends a guild's events to."""
    return (int(guild_id) >> 22) % shard_count


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


# Permission bits used by the fake and the tests (discord.Permissions values).
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3
MODERATE_MEMBERS = 1 << 40
BOT_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | MANAGE_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | MODERATE_MEMBERS
)
MEMBER_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ATTACH_FILES | EMBED_LINKS
)


def user(user_id: str, name: str, *, bot: bool = False) -> JSON:
    return {
        "id": user_id,
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def member(user_payload: JSON, roles: list[str], *, permissions: int | None = None) -> JSON:
    data: JSON = {
        "user": user_payload,
        "roles": list(roles),
        "nick": None,
        "avatar": None,
        "joined_at": now_iso(),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
    }
    if permissions is not None:  # interactions carry the member's computed permissions
        data["permissions"] = str(permissions)
    return data


def role(role_id: str, name: str, permissions: int, position: int = 1) -> JSON:
    return {
        "id": role_id,
        "name": name,
        "permissions": str(permissions),
        "position": position,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def overwrite(target_id: str, *, allow: int = 0, deny: int = 0, member: bool = False) -> JSON:
    return {"id": target_id, "type": 1 if member else 0, "allow": str(allow), "deny": str(deny)}


def text_channel(
    channel_id: str,
    guild_id: str,
    name: str,
    position: int = 0,
    overwrites: list[JSON] | None = None,
) -> JSON:
    return {
        "id": channel_id,
        "guild_id": guild_id,
        "type": 0,
        "name": name,
        "position": position,
        "permission_overwrites": overwrites or [],
        "nsfw": False,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "parent_id": None,
    }


def attachment(attachment_id: str, filename: str, url: str, size: int, content_type: str) -> JSON:
    return {
        "id": attachment_id,
        "filename": filename,
        "size": size,
        "url": url,
        "proxy_url": url,
        "content_type": content_type,
        "width": 64,
        "height": 64,
    }


def message(
    *,
    message_id: str,
    channel_id: str,
    guild_id: str | None,
    author: JSON,
    member_payload: JSON | None = None,
    content: str = "",
    attachments: list[JSON] | None = None,
    embeds: list[JSON] | None = None,
    components: list[JSON] | None = None,
    referenced: JSON | None = None,
    edited: bool = False,
    flags: int = 0,
    application_id: str | None = None,
) -> JSON:
    data: JSON = {
        "id": message_id,
        "channel_id": channel_id,
        "author": author,
        "content": content,
        "timestamp": now_iso(),
        "edited_timestamp": now_iso() if edited else None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": attachments or [],
        "embeds": embeds or [],
        "components": components or [],
        "pinned": False,
        "type": 19 if referenced else 0,
        "flags": flags,
    }
    if guild_id is not None:
        data["guild_id"] = guild_id
    if member_payload is not None:
        # MESSAGE_CREATE carries the member without its user object
        data["member"] = {k: v for k, v in member_payload.items() if k != "user"}
    if referenced is not None:
        data["message_reference"] = {
            "type": 0,
            "message_id": referenced["id"],
            "channel_id": referenced["channel_id"],
            "guild_id": guild_id,
        }
        data["referenced_message"] = referenced
    if application_id is not None:
        data["application_id"] = application_id
    return data


def interaction(
    *,
    interaction_id: str,
    application_id: str,
    kind: int,
    token: str,
    guild_id: str,
    channel: JSON,
    member_payload: JSON,
    data: JSON | None,
    message_payload: JSON | None = None,
    locale: str = "en-US",
    guild_locale: str = "en-US",
    app_permissions: int = BOT_PERMISSIONS,
) -> JSON:
    payload: JSON = {
        "id": interaction_id,
        "application_id": application_id,
        "type": kind,
        "token": token,
        "version": 1,
        "guild_id": guild_id,
        "channel_id": channel["id"],
        "channel": {
            "id": channel["id"],
            "type": channel["type"],
            "guild_id": guild_id,
            "name": channel.get("name", ""),
        },
        "member": member_payload,
        "locale": locale,
        "guild_locale": guild_locale,
        "app_permissions": str(app_permissions),
        "entitlements": [],
        "authorizing_integration_owners": {"0": guild_id},
        "context": 0,
        "attachment_size_limit": 25 * 1024 * 1024,
    }
    if data is not None:
        payload["data"] = data
    if message_payload is not None:
        payload["message"] = message_payload
    return payload


def dm_interaction(
    *,
    interaction_id: str,
    application_id: str,
    kind: int,
    token: str,
    dm_channel: JSON,
    user_payload: JSON,
    data: JSON | None,
    message_payload: JSON | None = None,
    locale: str = "en-US",
) -> JSON:
    """An interaction in the bot's DM with a person (a button on a DM the bot sent): no
    guild_id, no member, the `user` itself, a channel of type 1 and context 1 (BOT_DM)."""
    payload: JSON = {
        "id": interaction_id,
        "application_id": application_id,
        "type": kind,
        "token": token,
        "version": 1,
        "channel_id": dm_channel["id"],
        "channel": {
            "id": dm_channel["id"],
            "type": 1,
            "recipients": dm_channel.get("recipients", []),
        },
        "user": user_payload,
        "locale": locale,
        "app_permissions": str(BOT_PERMISSIONS),
        "entitlements": [],
        "authorizing_integration_owners": {"0": user_payload["id"]},
        "context": 1,
        "attachment_size_limit": 25 * 1024 * 1024,
    }
    if data is not None:
        payload["data"] = data
    if message_payload is not None:
        payload["message"] = message_payload
    return payload


_SELECTS = (3, 5, 6, 7, 8)


def _filled(shown: JSON, values: dict[str, Any]) -> JSON:
    """One input as Discord returns it: text inputs a `value`, selects `values`, a checkbox a
    boolean. A required input left empty is refused, as Discord's client refuses to submit."""
    custom_id = shown["custom_id"]
    value = values.get(custom_id)
    kind = shown["type"]
    empty = value in (None, "", [], False)
    if empty and shown.get("required", kind in (4, *_SELECTS)) and kind != 23:
        raise ValueError(f"Discord refuses to submit: required field {custom_id!r} is empty")
    base: JSON = {"type": kind, "custom_id": custom_id, **_id_of(shown)}
    if kind == 4:
        return {**base, "value": value or ""}
    if kind in _SELECTS:
        return {**base, "values": list(value or [])}
    if kind == 23:
        return {**base, "value": bool(value)}
    raise ValueError(f"the fake cannot fill component type {kind}")


def _id_of(shown: JSON) -> JSON:
    return {"id": shown["id"]} if shown.get("id") is not None else {}


def modal_submission(shown: list[JSON], values: dict[str, Any]) -> list[JSON]:
    """The `components` of a MODAL_SUBMIT for the modal the bot opened (`shown`), in its
    layout: action rows of text inputs, or labels (type 18) holding one input each."""
    submitted: list[JSON] = []
    for component in shown:
        if component["type"] == 1:
            submitted.append(
                {
                    "type": 1,
                    "components": [_filled(child, values) for child in component["components"]],
                }
            )
        elif component["type"] == 18:
            submitted.append(
                {
                    "type": 18,
                    **_id_of(component),
                    "component": _filled(component["component"], values),
                }
            )
        elif component["type"] == 10:
            submitted.append(
                {"type": 10, **_id_of(component), "content": component.get("content", "")}
            )
    return submitted

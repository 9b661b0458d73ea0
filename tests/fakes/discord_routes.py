"""The REST routes of the fake Discord: (fake, call) -> (status, JSON body or None for 204).

Answers have the shapes of Discord API v10; unknown routes answer 404 so a test notices.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.fakes import discord_payloads as p

if TYPE_CHECKING:
    from tests.fakes.discord_server import Call, FakeDiscord

JSON = dict[str, Any]
Handler = Callable[["FakeDiscord", "Call", re.Match[str]], tuple[int, Any]]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def _route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _ROUTES.append((method, re.compile(pattern), handler))
        return handler

    return register


def route(fake: FakeDiscord, call: Call) -> tuple[int, Any]:
    for method, pattern, handler in _ROUTES:
        match = pattern.fullmatch(call.path)
        if match and method == call.method:
            return handler(fake, call, match)
    return 404, {"message": "404: Not Found", "code": 0}


def _unknown(what: str, code: int) -> tuple[int, JSON]:
    return 404, {"message": f"Unknown {what}", "code": code}


def _guild_of_channel(fake: FakeDiscord, channel_id: str) -> str | None:
    for guild in fake.guilds.values():
        if channel_id in guild.channels:
            return guild.id
    return None


@_route("GET", r"/gateway/bot")
def _gateway(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    return 200, {
        "url": fake.ws_url,
        "shards": fake.shard_count,
        "session_start_limit": {
            "total": 1000,
            "remaining": 999,
            "reset_after": 0,
            "max_concurrency": 1,
        },
    }


@_route("GET", r"/users/@me")
def _me(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    return 200, fake.bot_user


@_route("GET", r"/oauth2/applications/@me")
def _application(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    return 200, {
        "id": fake.application_id,
        "name": "Veille",
        "icon": None,
        "description": "",
        "bot_public": False,
        "bot_require_code_grant": False,
        "owner": fake.owner,
        "verify_key": "0" * 64,
        "flags": 0,
        "summary": "",
        "team": None,
    }


@_route("PUT", r"/applications/(\d+)/commands")
@_route("PUT", r"/applications/(\d+)/guilds/(\d+)/commands")
def _sync(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    scope = m.group(2) if m.lastindex and m.lastindex >= 2 else "global"
    commands = [
        {
            **command,
            "id": p.snowflake(),
            "application_id": fake.application_id,
            "version": p.snowflake(),
            "type": command.get("type", 1),
            "default_member_permissions": command.get("default_member_permissions"),
            "description": command.get("description", ""),
            "dm_permission": command.get("dm_permission", True),
            "nsfw": command.get("nsfw", False),
            **({"guild_id": scope} if scope != "global" else {}),
        }
        for command in call.body or []
    ]
    fake.commands[scope] = commands
    return 200, commands


@_route("GET", r"/applications/(\d+)/commands")
def _commands(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    return 200, fake.commands.get("global", [])


def _new_message(
    fake: FakeDiscord,
    channel_id: str,
    call: Call,
    *,
    author: JSON | None = None,
    webhook: bool = False,
) -> JSON:
    body = call.body or {}
    attachments = [fake.host_file(name, data) for name, data in call.files]
    message = p.message(
        message_id=p.snowflake(),
        channel_id=channel_id,
        guild_id=_guild_of_channel(fake, channel_id),
        author=author or fake.bot_user,
        content=body.get("content") or "",
        attachments=attachments,
        embeds=body.get("embeds"),
        components=body.get("components"),
        flags=body.get("flags", 0),
        application_id=fake.application_id if webhook else None,
    )
    if webhook:
        message["webhook_id"] = fake.application_id
    fake.messages[message["id"]] = message
    return message


@_route("POST", r"/channels/(\d+)/messages")
def _post_message(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    channel_id = m.group(1)
    if _guild_of_channel(fake, channel_id) is None and channel_id not in {
        c["id"] for c in fake.dm_channels.values()
    }:
        return _unknown("Channel", 10003)
    body = call.body or {}
    nonce = body.get("nonce") if body.get("enforce_nonce") else None
    if nonce is not None and nonce in fake.nonces:  # Discord: the message already made
        return 200, fake.messages[fake.nonces[nonce]]
    message = _new_message(fake, channel_id, call)
    if nonce is not None:
        fake.nonces[nonce] = message["id"]
    return 200, message


@_route("GET", r"/channels/(\d+)/messages/(\d+)")
def _get_message(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    message = fake.messages.get(m.group(2))
    return (200, message) if message else _unknown("Message", 10008)


@_route("PATCH", r"/channels/(\d+)/messages/(\d+)")
def _edit_message(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    return _apply_edit(fake, m.group(2), call)


def _apply_edit(fake: FakeDiscord, message_id: str, call: Call) -> tuple[int, Any]:
    message = fake.messages.get(message_id)
    if message is None:
        return _unknown("Message", 10008)
    body = call.body or {}
    for key in ("content", "embeds", "components", "flags"):
        if key in body:
            message[key] = body[key]
    if "attachments" in body or call.files:
        kept = {str(a.get("id")) for a in body.get("attachments", [])}
        message["attachments"] = [a for a in message["attachments"] if a["id"] in kept] + [
            fake.host_file(name, data) for name, data in call.files
        ]
    message["edited_timestamp"] = p.now_iso()
    return 200, message


@_route("DELETE", r"/channels/(\d+)/messages/(\d+)")
def _delete_message(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    message = fake.messages.pop(m.group(2), None)
    return (204, None) if message else _unknown("Message", 10008)


@_route("POST", r"/users/@me/channels")
def _open_dm(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    recipient = str((call.body or {})["recipient_id"])
    channel = fake.dm_channels.setdefault(
        recipient,
        {
            "id": p.snowflake(),
            "type": 1,
            "last_message_id": None,
            "recipients": [p.user(recipient, f"user-{recipient}")],
        },
    )
    return 200, channel


@_route("PATCH", r"/guilds/(\d+)/members/(\d+)")
def _edit_member(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    guild = fake.guilds.get(m.group(1))
    member = guild and guild.members.get(m.group(2))
    if not member:
        return _unknown("Member", 10007)
    if "communication_disabled_until" in (call.body or {}):
        member["communication_disabled_until"] = call.body["communication_disabled_until"]
    return 200, member


@_route("GET", r"/guilds/(\d+)/members/(\d+)")
def _get_member(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    guild = fake.guilds.get(m.group(1))
    member = guild and guild.members.get(m.group(2))
    return (200, member) if member else _unknown("Member", 10007)


@_route("GET", r"/guilds/(\d+)/channels")
def _guild_channels(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    guild = fake.guilds.get(m.group(1))
    return (200, list(guild.channels.values())) if guild else _unknown("Guild", 10004)


@_route("GET", r"/guilds/(\d+)/roles")
def _guild_roles(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    guild = fake.guilds.get(m.group(1))
    return (200, list(guild.roles.values())) if guild else _unknown("Guild", 10004)


@_route("POST", r"/interactions/(\d+)/([\w-]+)/callback")
def _callback(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    """Type 4 (message), 5 (deferred), 6 (deferred update), 7 (update message), 9 (modal)."""
    origin = fake.interactions.get(m.group(1))
    if origin is None or origin["token"] != m.group(2):
        return _unknown("interaction", 10062)
    if m.group(1) in fake.responses:
        return 400, {"message": "Interaction has already been acknowledged.", "code": 40060}
    body = call.body or {}
    kind = body.get("type")
    data = body.get("data") or {}
    interaction: JSON = {
        "id": m.group(1),
        "type": origin["type"],
        "response_message_loading": kind == 5,
        "response_message_ephemeral": bool(data.get("flags", 0) & 64),
    }
    answer: JSON = {"interaction": interaction}
    message: JSON | None = None
    inner = dataclasses.replace(call, body=data)  # the message fields sit under "data"
    if kind == 4:
        message = _new_message(fake, origin["channel_id"], inner, webhook=True)
        message["interaction_metadata"] = {
            "id": origin["id"],
            "type": origin["type"],
            "user": _who(origin),
            "authorizing_integration_owners": {},
        }
    elif kind == 7 and "message" in origin:
        status, message = _apply_edit(fake, origin["message"]["id"], inner)
        if status != 200:
            return status, message
    fake.responses[m.group(1)] = {"type": kind, "data": data, "message": message}
    if message is not None:
        answer["resource"] = {"type": kind, "message": message}
        interaction["response_message_id"] = message["id"]
    return 200, answer


def _who(interaction: JSON) -> JSON:
    """The user behind an interaction: the member's in a guild, the `user` in a DM."""
    return interaction["member"]["user"] if "member" in interaction else interaction["user"]


@_route("POST", r"/webhooks/(\d+)/([\w-]+)")
def _followup(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    return 200, _new_message(fake, "0", call, webhook=True)


@_route("PATCH", r"/webhooks/(\d+)/([\w-]+)/messages/([@\w]+)")
def _edit_followup(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    return 200, _new_message(fake, "0", call, webhook=True)


@_route("GET", r"/webhooks/(\d+)/([\w-]+)/messages/([@\w]+)")
def _get_followup(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    return 200, _new_message(fake, "0", call, webhook=True)


@_route("DELETE", r"/webhooks/(\d+)/([\w-]+)/messages/([@\w]+)")
def _delete_followup(fake: FakeDiscord, call: Call, m: re.Match[str]) -> tuple[int, Any]:
    return 204, None

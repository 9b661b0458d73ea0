"""A local fake Discord: REST API v10 + gateway websocket + attachment CDN on 127.0.0.1.

The real discord.py client connects to it (REST base from `base_url`, the gateway address from
GET /gateway/bot). It shards as Discord does: GET /gateway/bot says `shard_count`, and a guild's
events and interactions go only to the connections that identified with its shard
((guild_id >> 22) % count); DMs go to shard 0. Every REST call is recorded as a `Call`; tests wait on conditions
(`wait_call`, `wait_for`) instead of sleeping. `rate_limit()` makes the next matching calls
answer 429 with Retry-After and the X-RateLimit-* headers, as Discord does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import discord_payloads as p
from tests.fakes.discord_gateway import FakeGateway

JSON = dict[str, Any]
API = "/api/v10"


@dataclass
class Call:
    """One REST request the bot made."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any  # the JSON body, or payload_json of a multipart request
    files: list[tuple[str, bytes]]  # (file name, bytes) of multipart attachments
    headers: dict[str, str]
    status: int = 0
    response: Any = None  # what the fake answered (e.g. the created message)


@dataclass
class RateLimitRule:
    method: str
    pattern: re.Pattern[str]
    times: int
    retry_after: float
    is_global: bool = False


@dataclass
class FakeGuild:
    id: str
    name: str
    owner_id: str
    roles: dict[str, JSON] = field(default_factory=dict)
    channels: dict[str, JSON] = field(default_factory=dict)
    members: dict[str, JSON] = field(default_factory=dict)
    locale: str = "en-US"

    @property
    def everyone_id(self) -> str:
        return self.id

    def payload(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "icon": None,
            "owner_id": self.owner_id,
            "roles": list(self.roles.values()),
            "channels": list(self.channels.values()),
            "members": list(self.members.values()),
            "member_count": len(self.members),
            "features": [],
            "emojis": [],
            "stickers": [],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "unavailable": False,
            "large": False,
            "preferred_locale": self.locale,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "system_channel_flags": 0,
            "afk_timeout": 300,
            "joined_at": p.now_iso(),
        }


@dataclass
class FakeInteraction:
    payload: JSON

    @property
    def callback_path(self) -> str:
        return f"/interactions/{self.payload['id']}/{self.payload['token']}/callback"

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/{self.payload['application_id']}/{self.payload['token']}"


class FakeDiscord:
    """One application with one bot user; guilds, channels and messages live in memory."""

    def __init__(self, *, token: str = "fake-bot-token", shard_count: int = 1) -> None:
        self.token = token
        self.shard_count = shard_count  # what GET /gateway/bot recommends
        self.application_id = p.snowflake()
        self.bot_user = p.user(self.application_id, "Veille", bot=True)
        self.owner = p.user(p.snowflake(), "Owner")
        self.guilds: dict[str, FakeGuild] = {}
        self.messages: dict[str, JSON] = {}  # message id -> payload (all channels)
        self.nonces: dict[str, str] = {}  # enforced nonce -> the message it made
        self.dm_channels: dict[str, JSON] = {}  # recipient id -> channel
        self.commands: dict[str, list[JSON]] = {}  # "global" or guild id -> commands
        self.blobs: dict[str, tuple[bytes, str]] = {}  # CDN path -> (bytes, content type)
        self.cdn_reads: list[str] = []  # CDN paths downloaded, in order
        self.calls: list[Call] = []
        self.interactions: dict[str, JSON] = {}  # interaction id -> INTERACTION_CREATE payload
        self.responses: dict[str, JSON] = {}  # interaction id -> {type, data, message}
        self.identifies: list[JSON] = []
        self.rate_limits: list[RateLimitRule] = []
        self.gateway = FakeGateway(self)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/cdn/{tail:.*}", self._cdn)
        app.router.add_route("*", API + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        for ws in list(self.sockets):
            # A client that is itself shutting down may never answer the close handshake.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.close(), 2)
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # --- world building ----------------------------------------------------------------

    def add_guild(self, name: str = "Safe Space", *, shard: int | None = None) -> FakeGuild:
        """A guild with the bot and the owner in it; `shard`: an id that falls on that shard of
        `shard_count`."""
        guild_id = p.snowflake() if shard is None else p.snowflake_on_shard(shard, self.shard_count)
        guild = FakeGuild(guild_id, name, self.owner["id"])
        guild.roles[guild.id] = p.role(guild.id, "@everyone", p.MEMBER_PERMISSIONS, 0)
        bot_role = self.add_role(guild, "Veille", p.BOT_PERMISSIONS, position=5)
        guild.members[self.bot_user["id"]] = p.member(self.bot_user, [bot_role["id"]])
        guild.members[self.owner["id"]] = p.member(self.owner, [])
        self.guilds[guild.id] = guild
        return guild

    def add_role(
        self, guild: FakeGuild, name: str, permissions: int = 0, position: int = 1
    ) -> JSON:
        data = p.role(p.snowflake(), name, permissions, position)
        guild.roles[data["id"]] = data
        return data

    def add_channel(
        self, guild: FakeGuild, name: str, overwrites: list[JSON] | None = None
    ) -> JSON:
        data = p.text_channel(p.snowflake(), guild.id, name, len(guild.channels), overwrites)
        guild.channels[data["id"]] = data
        return data

    def add_member(
        self, guild: FakeGuild, name: str, roles: list[str] | None = None, *, bot: bool = False
    ) -> JSON:
        data = p.member(p.user(p.snowflake(), name, bot=bot), roles or [])
        guild.members[data["user"]["id"]] = data
        return data

    def permissions(self, guild: FakeGuild, member_payload: JSON) -> int:
        """Guild-level permissions of a member, as Discord computes them for interactions."""
        if member_payload["user"]["id"] == guild.owner_id:
            return (1 << 53) - 1
        value = int(guild.roles[guild.everyone_id]["permissions"])
        for role_id in member_payload["roles"]:
            value |= int(guild.roles[role_id]["permissions"])
        return (1 << 53) - 1 if value & p.ADMINISTRATOR else value

    def host_file(self, filename: str, data: bytes, content_type: str | None = None) -> JSON:
        """An attachment payload whose URL this fake serves (Discord's CDN); the content type is
        guessed from the file name, as Discord does."""
        content_type = (
            content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        )
        attachment_id = p.snowflake()
        path = f"/cdn/attachments/{attachment_id}/{filename}"
        self.blobs[path] = (data, content_type)
        url = f"http://127.0.0.1:{self.port}{path}"
        return p.attachment(attachment_id, filename, url, len(data), content_type)

    # --- what users do -----------------------------------------------------------------

    async def post_message(
        self,
        guild: FakeGuild,
        channel: JSON,
        author: JSON,
        content: str = "",
        *,
        files: list[tuple[str, bytes]] | None = None,
        embeds: list[JSON] | None = None,
        reply_to: JSON | None = None,
    ) -> JSON:
        """A member posts a message: stored, then MESSAGE_CREATE on the gateway."""
        attachments = [self.host_file(name, data) for name, data in files or []]
        message = p.message(
            message_id=p.snowflake(),
            channel_id=channel["id"],
            guild_id=guild.id,
            author=author["user"],
            member_payload=author,
            content=content,
            attachments=attachments,
            embeds=embeds,
            referenced=reply_to,
        )
        self.messages[message["id"]] = message
        await self.dispatch("MESSAGE_CREATE", message)
        return message

    async def forward_message(
        self, guild: FakeGuild, channel: JSON, author: JSON, original: JSON
    ) -> JSON:
        """A member forwards `original` into `channel`: Discord sends an empty message whose
        reference has type 1 (FORWARD) and whose `message_snapshots` carry the content."""
        message = p.message(
            message_id=p.snowflake(),
            channel_id=channel["id"],
            guild_id=guild.id,
            author=author["user"],
            member_payload=author,
        )
        message["message_reference"] = {
            "type": 1,
            "message_id": original["id"],
            "channel_id": original["channel_id"],
            "guild_id": guild.id,
        }
        message["message_snapshots"] = [
            {
                "message": {
                    key: original.get(key)
                    for key in (
                        "type",
                        "content",
                        "embeds",
                        "attachments",
                        "timestamp",
                        "edited_timestamp",
                        "flags",
                        "mentions",
                        "mention_roles",
                        "components",
                    )
                }
            }
        ]
        self.messages[message["id"]] = message
        await self.dispatch("MESSAGE_CREATE", message)
        return message

    async def edit_message(
        self,
        message: JSON,
        *,
        content: str | None = None,
        files: list[tuple[str, bytes]] | None = None,
    ) -> JSON:
        """The author edits a message (e.g. adds an image): MESSAGE_UPDATE with the full message."""
        updated = dict(message)
        if content is not None:
            updated["content"] = content
        if files:
            updated["attachments"] = message["attachments"] + [
                self.host_file(name, data) for name, data in files
            ]
        updated["edited_timestamp"] = p.now_iso()
        self.messages[updated["id"]] = updated
        await self.dispatch("MESSAGE_UPDATE", updated)
        return updated

    async def interact(
        self,
        guild: FakeGuild,
        channel: JSON,
        member_payload: JSON,
        kind: int,
        data: JSON | None,
        *,
        message: JSON | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """INTERACTION_CREATE of `kind` (2 command, 3 component, 5 modal submit)."""
        payload = p.interaction(
            interaction_id=p.snowflake(),
            application_id=self.application_id,
            kind=kind,
            token=f"itoken-{p.snowflake()}",
            guild_id=guild.id,
            channel=channel,
            member_payload={
                **member_payload,
                "permissions": str(self.permissions(guild, member_payload)),
            },
            data=data,
            message_payload=message,
            locale=locale,
            guild_locale=guild.locale,
        )
        self.interactions[payload["id"]] = payload
        await self.dispatch("INTERACTION_CREATE", payload)
        return FakeInteraction(payload)

    async def click(
        self,
        guild: FakeGuild,
        channel: JSON,
        member_payload: JSON,
        message: JSON,
        custom_id: str,
        *,
        locale: str = "en-US",
    ) -> FakeInteraction:
        data = {"custom_id": custom_id, "component_type": 2}
        return await self.interact(
            guild, channel, member_payload, 3, data, message=message, locale=locale
        )

    async def select(
        self,
        guild: FakeGuild,
        channel: JSON,
        member_payload: JSON,
        message: JSON,
        custom_id: str,
        component_type: int,
        values: list[str],
    ) -> FakeInteraction:
        """A select menu choice; role (6) and channel (8) selects carry Discord's `resolved`."""
        data: JSON = {"custom_id": custom_id, "component_type": component_type, "values": values}
        if component_type == 6:
            data["resolved"] = {"roles": {v: guild.roles[v] for v in values}}
        elif component_type == 8:
            data["resolved"] = {
                "channels": {
                    v: {
                        "id": v,
                        "name": guild.channels[v]["name"],
                        "type": guild.channels[v]["type"],
                        "parent_id": None,
                        "permissions": str(self.permissions(guild, member_payload)),
                    }
                    for v in values
                }
            }
        return await self.interact(guild, channel, member_payload, 3, data, message=message)

    async def slash(
        self,
        guild: FakeGuild,
        channel: JSON,
        member_payload: JSON,
        name: str,
        options: list[JSON] | None = None,
        *,
        resolved: JSON | None = None,
        command_type: int = 1,
        target_id: str | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        registered = self.find_command(name, command_type)
        data: JSON = {
            "id": registered["id"],
            "name": name,
            "type": command_type,
            "options": options or [],
        }
        if resolved is not None:
            data["resolved"] = resolved
        if target_id is not None:
            data["target_id"] = target_id
        return await self.interact(guild, channel, member_payload, 2, data, locale=locale)

    async def submit_modal(
        self,
        guild: FakeGuild | None,
        channel: JSON,
        member_payload: JSON,
        custom_id: str,
        values: dict[str, Any],
        *,
        modal: JSON | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """MODAL_SUBMIT. With `modal` (the data of the bot's type-9 answer) the submission has
        that modal's layout (labels holding selects, text inputs, checkboxes); without it, one
        action row per text input. `guild=None`: a modal opened from a DM."""
        if modal is not None:
            components = p.modal_submission(modal["components"], values)
        else:
            components = [
                {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
                for key, value in values.items()
            ]
        data = {"custom_id": custom_id, "components": components}
        if guild is None:
            return await self.interact_dm(member_payload, 5, data, locale=locale)
        return await self.interact(guild, channel, member_payload, 5, data, locale=locale)

    async def interact_dm(
        self,
        member_payload: JSON,
        kind: int,
        data: JSON | None,
        *,
        message: JSON | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """An interaction in the bot's DM with this person (their DM channel is opened if the
        bot never did): no guild, the user instead of a member."""
        person = member_payload.get("user", member_payload)
        dm = self.dm_channels.setdefault(
            person["id"],
            {"id": p.snowflake(), "type": 1, "last_message_id": None, "recipients": [person]},
        )
        payload = p.dm_interaction(
            interaction_id=p.snowflake(),
            application_id=self.application_id,
            kind=kind,
            token=f"itoken-{p.snowflake()}",
            dm_channel=dm,
            user_payload=person,
            data=data,
            message_payload=message,
            locale=locale,
        )
        self.interactions[payload["id"]] = payload
        await self.dispatch("INTERACTION_CREATE", payload)
        return FakeInteraction(payload)

    async def click_dm(
        self, member_payload: JSON, message: JSON, custom_id: str, *, locale: str = "en-US"
    ) -> FakeInteraction:
        """The person presses a button on a DM the bot sent them."""
        return await self.interact_dm(
            member_payload,
            3,
            {"custom_id": custom_id, "component_type": 2},
            message=message,
            locale=locale,
        )

    def find_command(self, name: str, command_type: int = 1) -> JSON:
        for commands in self.commands.values():
            for command in commands:
                if command["name"] == name and command.get("type", 1) == command_type:
                    return command
        raise KeyError(f"command {name!r} was never synced")

    # --- test conditions ---------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], Any], within: float = 15.0) -> Any:
        """Wait until `predicate()` is truthy. It is re-checked after every REST call and gateway
        message, and every 50 ms for state outside the fake (the bot's database)."""

        async def _wait() -> Any:
            async with self._changed:
                while not (result := predicate()):
                    try:
                        await asyncio.wait_for(self._changed.wait(), 0.05)
                    except TimeoutError:
                        pass
                return result

        return await asyncio.wait_for(_wait(), within)

    def find_calls(self, method: str, pattern: str) -> list[Call]:
        regex = re.compile(pattern)
        return [
            c
            for c in self.calls
            if c.method == method and regex.fullmatch(c.path) and 200 <= c.status < 300
        ]

    async def wait_call(
        self, method: str, pattern: str, *, count: int = 1, within: float = 15.0
    ) -> Call:
        """The `count`-th successful call matching `method` and the `pattern` (full match)."""
        calls = await self.wait_for(
            lambda: (found := self.find_calls(method, pattern)) and len(found) >= count and found,
            within,
        )
        return calls[count - 1]

    def rate_limit(
        self,
        method: str,
        pattern: str,
        *,
        times: int = 1,
        retry_after: float = 0.05,
        is_global: bool = False,
    ) -> None:
        self.rate_limits.append(
            RateLimitRule(method, re.compile(pattern), times, retry_after, is_global)
        )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- gateway -----------------------------------------------------------------------

    @property
    def sockets(self) -> list[web.WebSocketResponse]:
        """Identified gateway connections (one per running client)."""
        return self.gateway.sockets

    def socket_of(self, ws: web.WebSocketResponse) -> tuple[int, int]:
        """The [shard id, shard count] a connection identified with."""
        return self.gateway.shards[id(ws)]

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send a DISPATCH (op 0) to every identified connection holding the event's guild (its
        `guild_id`; none: shard 0, as Discord sends DMs)."""
        await self.gateway.dispatch(event, data)
        await self._notify()

    # --- CDN ---------------------------------------------------------------------------

    async def _cdn(self, request: web.Request) -> web.Response:
        blob = self.blobs.get(request.path)
        self.cdn_reads.append(request.path)
        if blob is None:
            return web.Response(status=404)
        return web.Response(body=blob[0], content_type=blob[1])

    # --- REST --------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        call = await self._record(request)
        if request.headers.get("Authorization") != f"Bot {self.token}" and not (
            call.path.startswith("/webhooks/") or call.path.startswith("/interactions/")
        ):
            return await self._answer(call, 401, {"message": "401: Unauthorized", "code": 0})
        for rule in self.rate_limits:
            if rule.times > 0 and rule.method == call.method and rule.pattern.fullmatch(call.path):
                rule.times -= 1
                return await self._too_many(call, rule)
        from tests.fakes.discord_routes import route  # the REST handlers live next door

        status, body = route(self, call)
        return await self._answer(call, status, body)

    async def _record(self, request: web.Request) -> Call:
        body: Any = None
        files: list[tuple[str, bytes]] = []
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":  # type: ignore[union-attr]
                    body = json.loads(await part.text())  # type: ignore[union-attr]
                else:
                    files.append((part.filename or "", await part.read()))  # type: ignore[union-attr]
        elif request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        return Call(
            request.method,
            request.path[len(API) :],
            dict(request.query),
            body,
            files,
            dict(request.headers),
        )

    async def _answer(self, call: Call, status: int, body: Any) -> web.Response:
        call.status = status
        call.response = body
        self.calls.append(call)
        headers = {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "4",
            "X-RateLimit-Reset-After": "1.0",
            "X-RateLimit-Bucket": "fake-bucket",
        }
        await self._notify()
        if status == 204 or body is None:
            return web.Response(status=204, headers=headers)
        return _json(body, status, headers)

    async def _too_many(self, call: Call, rule: RateLimitRule) -> web.Response:
        call.status = 429
        self.calls.append(call)
        await self._notify()
        headers = {
            "Retry-After": str(rule.retry_after),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": str(rule.retry_after),
            "X-RateLimit-Bucket": "fake-bucket",
            "X-RateLimit-Scope": "user",
            "Via": "1.1 google",  # discord.py treats a 429 without Via as a Cloudflare ban
        }
        if rule.is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": rule.retry_after,
            "global": rule.is_global,
        }
        return _json(body, 429, headers)


def _json(body: Any, status: int, headers: dict[str, str]) -> web.Response:
    """Exactly `application/json`, as Discord sends it: discord.py compares the header verbatim."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={**headers, "Content-Type": "application/json"},
    )

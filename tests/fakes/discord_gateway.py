"""The fake Discord's gateway websocket: HELLO, IDENTIFY → READY + GUILD_CREATE, heartbeats
and their ACKs, RESUME, and DISPATCH events with per-connection sequence numbers.

Sharded as Discord is: IDENTIFY carries `shard: [id, count]` (absent: [0, 1]); READY and
GUILD_CREATE list only that shard's guilds, and a guild's events go only to connections of
shard (guild_id >> 22) % count (events without a guild, DMs, to shard 0). An id outside the
count is closed with 4010 (Invalid shard), as Discord does.

Frames are plain JSON text: discord.py asks for zlib-stream compression but reads uncompressed
text frames as they come.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakes import discord_payloads as p

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord

JSON = dict[str, Any]
HEARTBEAT_INTERVAL_MS = 41250


class FakeGateway:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sockets: list[web.WebSocketResponse] = []  # identified connections
        self.shards: dict[int, tuple[int, int]] = {}  # id(ws) -> (shard id, shard count)
        # (shard id, event, guild id) of every event dispatched, in order
        self.delivered: list[tuple[int, str, str | None]] = []
        self._sessions: dict[str, tuple[int, int]] = {}  # session id -> its shard, for RESUME
        self._seq: dict[int, int] = {}

    def holds(self, ws: web.WebSocketResponse, guild_id: str | None) -> bool:
        shard_id, count = self.shards.get(id(ws), (0, 1))
        if guild_id is None:
            return shard_id == 0
        return p.shard_of(guild_id, count) == shard_id

    async def dispatch(self, event: str, data: JSON) -> None:
        guild_id = data.get("guild_id")
        for ws in list(self.sockets):
            # A client that just went away is not an error.
            if not ws.closed and self.holds(ws, guild_id):
                self.delivered.append((self.shards.get(id(ws), (0, 1))[0], event, guild_id))
                await self._send(ws, event, data)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(
            json.dumps({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op = frame.get("op")
                if op == 1:  # heartbeat
                    await ws.send_str(json.dumps({"op": 11}))
                elif op == 2:  # identify
                    await self._identify(ws, frame["d"])
                elif op == 6:  # resume: no backlog is kept, so the session simply goes on
                    self.shards[id(ws)] = self._sessions.get(frame["d"].get("session_id"), (0, 1))
                    self.sockets.append(ws)
                    await self._send(ws, "RESUMED", {})
        finally:
            if ws in self.sockets:
                self.sockets.remove(ws)
            self.shards.pop(id(ws), None)
            await self.fake._notify()
        return ws

    async def _send(self, ws: web.WebSocketResponse, event: str, data: JSON) -> None:
        seq = self._seq[id(ws)] = self._seq.get(id(ws), 0) + 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": seq, "d": data}))

    async def _identify(self, ws: web.WebSocketResponse, data: JSON) -> None:
        fake = self.fake
        if data.get("token") != fake.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        shard_id, count = data.get("shard") or (0, 1)
        if not 0 <= shard_id < count:
            await ws.close(code=4010, message=b"Invalid shard.")
            return
        fake.identifies.append(data)
        session_id = p.snowflake()
        self.shards[id(ws)] = self._sessions[session_id] = (shard_id, count)
        held = [guild for guild in fake.guilds.values() if self.holds(ws, guild.id)]
        await self._send(
            ws,
            "READY",
            {
                "v": 10,
                "user": fake.bot_user,
                "session_id": session_id,
                "resume_gateway_url": fake.ws_url,
                "shard": [shard_id, count],
                "guilds": [{"id": guild.id, "unavailable": True} for guild in held],
                "application": {"id": fake.application_id, "flags": 0},
            },
        )
        for guild in held:
            await self._send(ws, "GUILD_CREATE", guild.payload())
        self.sockets.append(ws)
        await fake._notify()

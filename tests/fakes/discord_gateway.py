"""The fake Discord's gateway websocket: HELLO, IDENTIFY → READY + GUILD_CREATE, heartbeats
and their ACKs, RESUME, and DISPATCH events with per-connection sequence numbers.

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
        self._seq: dict[int, int] = {}

    async def dispatch(self, event: str, data: JSON) -> None:
        for ws in list(self.sockets):
            if not ws.closed:  # a client that just went away is not an error
                await self._send(ws, event, data)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}}))
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
                    self.sockets.append(ws)
                    await self._send(ws, "RESUMED", {})
        finally:
            if ws in self.sockets:
                self.sockets.remove(ws)
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
        fake.identifies.append(data)
        await self._send(ws, "READY", {
            "v": 10, "user": fake.bot_user, "session_id": p.snowflake(),
            "resume_gateway_url": fake.ws_url, "shard": data.get("shard", [0, 1]),
            "guilds": [{"id": gid, "unavailable": True} for gid in fake.guilds],
            "application": {"id": fake.application_id, "flags": 0},
        })
        for guild in fake.guilds.values():
            await self._send(ws, "GUILD_CREATE", guild.payload())
        self.sockets.append(ws)
        await fake._notify()

"""An end-to-end Slack world: the real Veille core on a migrated SQLite file, the real Bolt app
run by SlackRunner in Socket Mode or HTTP mode, and the local fake Slack.

Payloads reach the app the way Slack sends them: envelopes over the Socket Mode websocket, or
signed HTTP POSTs to /slack/events. Listeners run after the ack, so assertions about their
effects wait for the effect itself (`eventually`), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import build_veille
from bot.core.scanner import Scanner
from bot.core.service import Veille
from bot.core.suite import load_thresholds
from bot.core.types import Actor, Platform, SetupInput
from bot.platforms.slack.runner import EVENTS_PATH, SlackRunner
from bot.settings import Settings
from bot.store.models import Ticket
from detectors.hashes import HashBank
from detectors.registry import DetectorDeps, build_detectors
from tests.fakes.slack_server import TEAM_ID, WAIT_S, FakeSlack
from tests.platforms.slack.conftest import SIGNING_SECRET, slack_settings

ADMIN = Actor(user_id="UADMIN", is_platform_admin=True)


async def eventually(probe: Callable[[], Any]) -> Any:
    """The first truthy result of `probe` (sync or async), polled until WAIT_S: a guard against
    a hang, not a timing."""
    deadline = time.monotonic() + WAIT_S
    while True:
        result = probe()
        if asyncio.iscoroutine(result):
            result = await result
        if result or time.monotonic() > deadline:
            assert result, "the expected effect never happened"
            return result
        await asyncio.sleep(0.02)


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class SlackWorld:
    slack: FakeSlack
    veille: Veille
    runner: SlackRunner
    engine: AsyncEngine
    mode: str

    # ---------------------------------------------------------------- sending like Slack
    async def send(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Deliver one payload; returns the ack's payload (socket) or JSON body (HTTP)."""
        if self.mode == "socket":
            ack = await self.slack.push(kind, payload)
            return dict(ack.get("payload") or {})
        status, text = await self.post(kind, payload)
        assert status == 200, text
        return json.loads(text) if text.startswith("{") else {}

    async def post(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
    ) -> tuple[int, str]:
        """A signed HTTP request as Slack sends it for `kind`; returns (status, body)."""
        if kind == "events_api":
            body, content_type = json.dumps(payload), "application/json"
        elif kind == "slash_commands":
            body, content_type = (
                urllib.parse.urlencode(payload),
                "application/x-www-form-urlencoded",
            )
        else:
            body = urllib.parse.urlencode({"payload": json.dumps(payload)})
            content_type = "application/x-www-form-urlencoded"
        return await self.post_raw(body, content_type, timestamp=timestamp, secret=secret)

    async def post_raw(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
    ) -> tuple[int, str]:
        """Any body, correctly signed (a sender that has the secret but sends garbage)."""
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": sign(body, ts, secret),
        }
        url = f"http://127.0.0.1:{self.runner.port}{EVENTS_PATH}"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as resp,
        ):
            return resp.status, await resp.text()

    # ---------------------------------------------------------------- Slack payloads
    async def message(
        self,
        channel: str,
        user: str,
        *,
        text: str = "",
        files: Sequence[Any] = (),
        thread_ts: str | None = None,
        channel_type: str = "channel",
    ) -> str:
        """A person posts a message (with files shared from the fake); returns its ts."""
        ts = self.slack.next_ts()
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
            "channel_type": channel_type,
            "team": TEAM_ID,
        }
        if files:
            event["subtype"] = "file_share"
            for file in files:
                file.channel, file.ts, file.user = channel, ts, user
            event["files"] = [self.slack.file_json(f) for f in files]
        if thread_ts:
            event["thread_ts"] = thread_ts
        self.slack.messages[(channel, ts)] = {**event, "blocks": None}
        await self.send(
            "events_api",
            {
                "type": "event_callback",
                "team_id": TEAM_ID,
                "api_app_id": "AVEILLE",
                "event_id": f"Ev{ts}",
                "event_time": int(float(ts)),
                "event": event,
            },
        )
        return ts

    async def command(self, user: str, text: str, channel: str = "CGEN") -> dict[str, Any]:
        return await self.send(
            "slash_commands",
            {
                "command": "/veille",
                "text": text,
                "team_id": TEAM_ID,
                "user_id": user,
                "channel_id": channel,
                "trigger_id": f"trig-{self.slack.next_ts()}",
                "response_url": f"{self.slack.base_url}response",
                "api_app_id": "AVEILLE",
            },
        )

    async def press(
        self, user: str, action_id: str, channel: str, message_ts: str
    ) -> dict[str, Any]:
        return await self.send(
            "interactive",
            {
                "type": "block_actions",
                "team": {"id": TEAM_ID},
                "user": {"id": user},
                "api_app_id": "AVEILLE",
                "trigger_id": f"trig-{self.slack.next_ts()}",
                "channel": {"id": channel},
                "container": {"type": "message", "message_ts": message_ts},
                "message": {"ts": message_ts},
                "actions": [
                    {
                        "type": "button",
                        "action_id": action_id,
                        "value": action_id,
                        "block_id": "veille_actions",
                    }
                ],
            },
        )

    async def submit(
        self, user: str, view: dict[str, Any], values: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.send(
            "interactive",
            {
                "type": "view_submission",
                "team": {"id": TEAM_ID},
                "user": {"id": user},
                "api_app_id": "AVEILLE",
                "trigger_id": f"trig-{self.slack.next_ts()}",
                "view": {**view, "id": "V1", "state": {"values": values}},
            },
        )

    # ---------------------------------------------------------------- arranging and reading
    async def setup(self, **changes: Any) -> None:
        values: dict[str, Any] = dict(
            safety_channel_id="CSAFE",
            quarantine_channel_id="CQUAR",
            moderator_role_ids=("SMODS",),
            locale="en",
        )
        values.update(changes)
        await self.veille.save_setup(Platform.SLACK, TEAM_ID, ADMIN, SetupInput(**values))

    async def tickets(self) -> list[Ticket]:
        async with AsyncSession(self.engine) as session:
            return list((await session.exec(select(Ticket).order_by(col(Ticket.id)))).all())

    def card_posts(self, channel: str = "CSAFE") -> list[dict[str, Any]]:
        """Ticket cards posted in `channel` (messages whose blocks carry veille buttons)."""
        return [
            c.args
            for c in self.slack.called("chat.postMessage")
            if c.args.get("channel") == channel and "veille:" in json.dumps(c.args.get("blocks"))
        ]


@asynccontextmanager
async def open_world(
    settings: Settings,
    engine: AsyncEngine,
    slack: FakeSlack,
    clip: Any,
    *,
    mode: str,
    admin: bool = True,
) -> AsyncIterator[SlackWorld]:
    """Veille (tiny CLIP shared by the session, a fresh hash bank) on Slack in `mode`."""
    app_settings = slack_settings(settings, slack, mode=mode, admin=admin)
    bank = HashBank()
    others = build_detectors(["hashes", "text"], DetectorDeps(bank=bank))
    for detector in others:
        await detector.load()
    scanner = Scanner([clip, *others], load_thresholds(app_settings))
    veille = await build_veille(app_settings, engine, scanner=scanner)
    runner = SlackRunner(app_settings, veille, host="127.0.0.1", port=0)
    await runner.start()
    veille.start()
    try:
        yield SlackWorld(slack, veille, runner, engine, mode)
    finally:
        await runner.stop()
        await veille.aclose()

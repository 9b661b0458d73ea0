"""Running the Slack app: Socket Mode (SLACK_APP_TOKEN) or HTTP (signed requests on
VEILLE_HTTP_PORT at /slack/events), as VEILLE_SLACK_MODE says. In OAuth mode the same HTTP
server also serves Bolt's /slack/install and /slack/oauth_redirect.

Both paths hand Slack's payloads to the same Bolt app; in HTTP mode Bolt's own request
verification answers a bad or stale X-Slack-Signature with 401 before any listener runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.platforms.slack.app import create_app, create_gateway
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.core.service import Veille

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


class SlackRunner:
    """Starts and stops Veille on Slack. `start()` returns once connected or listening."""

    def __init__(
        self, settings: Settings, veille: Veille, *, host: str = "0.0.0.0", port: int | None = None
    ) -> None:
        self.settings = settings
        self.gateway = create_gateway(settings, veille)
        self.app = create_app(settings, veille, self.gateway)
        self.host = host
        self.port = settings.http_port if port is None else port
        self._socket: AsyncSocketModeHandler | None = None
        self._web: web.AppRunner | None = None

    async def start(self) -> None:
        if self.settings.slack_mode == "socket":
            await self._start_socket()
        else:
            await self._start_http()

    async def _start_socket(self) -> None:
        if self.settings.slack_app_token is None:
            raise ValueError("SLACK_APP_TOKEN is required in Socket Mode")
        app_token = self.settings.slack_app_token.get_secret_value()
        # The socket client calls apps.connections.open (with the app token) through this
        # client, so it goes to SLACK_API_URL like every other call.
        self._socket = AsyncSocketModeHandler(self.app, app_token, web_client=self.gateway.client)
        await self._socket.connect_async()
        log.info("slack connected in socket mode")

    async def _start_http(self) -> None:
        served = self.app.web_app(path=EVENTS_PATH, port=self.port)
        served.middlewares.append(_refuse_malformed_bodies)
        self._web = web.AppRunner(served)
        await self._web.setup()
        site = web.TCPSite(self._web, self.host, self.port)
        await site.start()
        if self.port == 0:  # an ephemeral port (tests): report the one the OS chose
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            self.port = int(sockets[0].getsockname()[1]) if sockets else self.port
        log.info("slack listening on %s:%s%s", self.host, self.port, EVENTS_PATH)

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._web is not None:
            await self._web.cleanup()
            self._web = None
        await self.gateway.close()


@web.middleware
async def _refuse_malformed_bodies(request: web.Request, handler: Any) -> web.StreamResponse:
    """A correctly signed body that is not what Slack sends (broken JSON, a payload field that
    is not JSON) is the sender's mistake: 400 and one log line, not a 500 with a traceback."""
    try:
        return await handler(request)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        log.warning("slack: refused a malformed request body (%s)", type(exc).__name__)
        return web.Response(status=400, text="malformed request body")


async def start(settings: Settings, veille: Veille) -> None:
    """Run Veille on Slack until cancelled: the contract bot/app.py's composition root expects
    of each platform runner. Socket Mode reconnects by itself when Slack drops the socket."""
    runner = SlackRunner(settings, veille)
    await runner.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.stop()


async def start_worker(settings: Settings, veille: Veille) -> None:
    """The worker role's Slack: the Web API client only (downloads, removals, cards, DMs, each
    with its team's token in OAuth mode); no socket, no HTTP port."""
    gateway = create_gateway(settings, veille)
    veille.register_gateway(gateway)
    try:
        await asyncio.Event().wait()
    finally:
        await gateway.close()

"""The Bolt app factory: one `AsyncApp` per call, never at import time.

The app's Web API client carries the bot token and SLACK_API_URL (a proxy, or the local fake
Slack in tests); listeners are registered by kind, as in Bolt's sample apps. With SLACK_CLIENT_ID
and SLACK_CLIENT_SECRET the app is installable in many workspaces instead (oauth.py): no bot
token of its own, each request authorised with its team's installation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.ai_apps import AiApps
from bot.platforms.slack import actions, commands, events, oauth, victims, views
from bot.platforms.slack.actors import ActorDirectory
from bot.platforms.slack.context import SlackContext
from bot.platforms.slack.gateway import SlackGateway
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.core.service import Veille

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"


def web_client(settings: Settings, token: str | None = None) -> AsyncWebClient:
    """A Web API client on SLACK_API_URL (Slack's own when unset); `token` defaults to the bot's."""
    if token is None and settings.slack_bot_token is not None:
        token = settings.slack_bot_token.get_secret_value()
    base_url = settings.slack_api_url or DEFAULT_API_URL
    return AsyncWebClient(
        token=token, base_url=base_url if base_url.endswith("/") else base_url + "/"
    )


def create_gateway(settings: Settings, veille: Veille | None = None) -> SlackGateway:
    """The Slack Gateway: bot-token client on SLACK_API_URL, admin token for deletions if any.

    In OAuth mode (which needs `veille`, for its store and evidence key) the client routes each
    call to its team's token and SLACK_ADMIN_TOKEN, one workspace's user token, is not used.
    """
    if not settings.slack_oauth:
        admin = (
            settings.slack_admin_token.get_secret_value() if settings.slack_admin_token else None
        )
        return SlackGateway(
            web_client(settings),
            admin_token=admin,
            timeout_s=settings.fetch_timeout_s,
            reveal_ttl_s=settings.slack_reveal_ttl_s,
        )
    if veille is None or veille.cipher is None:
        # Workspace tokens are stored encrypted: no key, no installations.
        raise ValueError("VEILLE_SECRET_KEY is required for Slack OAuth (SLACK_CLIENT_ID)")
    base_url = settings.slack_api_url or DEFAULT_API_URL
    client = oauth.TeamRoutedClient(base_url=base_url if base_url.endswith("/") else base_url + "/")
    return SlackGateway(
        client,
        timeout_s=settings.fetch_timeout_s,
        reveal_ttl_s=settings.slack_reveal_ttl_s,
        installations=oauth.installation_store(veille.store, veille.cipher),
    )


async def only_the_installed_team(
    context: AsyncBoltContext, next: Callable[[], Awaitable[BoltResponse]]
) -> BoltResponse:
    """Single-token mode serves one workspace: a request from any other team (a forged or
    misrouted payload) is dropped before any listener runs, so it writes nothing. It is still
    acknowledged (an empty 200): a refusal would only make Slack deliver it again."""
    ours = context.authorize_result.team_id if context.authorize_result else None
    theirs = context.team_id
    if ours and theirs and theirs != ours:
        log.warning("slack: refused a request from team %s (this app serves %s)", theirs, ours)
        return BoltResponse(status=200, body="")
    return await next()


def create_app(settings: Settings, veille: Veille, gateway: SlackGateway | None = None) -> AsyncApp:
    """A ready Bolt app for `veille`; its Gateway (built here unless given, so a runner can
    close it) is registered with the core.

    The signing secret is passed even in Socket Mode (empty there): Bolt would otherwise read
    SLACK_SIGNING_SECRET from the environment itself, and only Settings reads the environment.
    """
    if settings.slack_bot_token is None and not settings.slack_oauth:
        raise ValueError("SLACK_BOT_TOKEN is required for Slack")
    if settings.slack_oauth and settings.slack_mode != "http":
        # The install redirect comes back over HTTP: Socket Mode cannot finish it.
        raise ValueError("Slack OAuth (SLACK_CLIENT_ID) needs VEILLE_SLACK_MODE=http")
    if settings.slack_mode == "http" and settings.slack_signing_secret is None:
        # Without a secret every unsigned request would be rejected: fail at start instead.
        raise ValueError("SLACK_SIGNING_SECRET is required in HTTP mode")
    gateway = gateway or create_gateway(settings, veille)
    client = gateway.client
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    if gateway.installations is not None:
        app = AsyncApp(
            client=client,
            signing_secret=secret,
            name="veille",
            oauth_settings=oauth.oauth_settings(settings, gateway.installations),
        )
        app.middleware(oauth.remember_the_team_token)
        oauth.register(app, gateway)
    else:
        app = AsyncApp(
            client=client,
            signing_secret=secret,
            name="veille",
        )
        app.middleware(only_the_installed_team)
    # One directory per team in OAuth mode: groups and admins are each workspace's own.
    actors = (
        ActorDirectory(client)
        if gateway.installations is None
        else oauth.TeamActorDirectory(client)
    )
    ctx = SlackContext(
        veille=veille, gateway=gateway, actors=actors, ai_apps=AiApps.from_setting(settings.ai_apps)
    )
    # victims first: its DM-photo listener must win over the generic message listener.
    for listeners in (victims, events, commands, actions, views):
        listeners.register(app, ctx)
    veille.register_gateway(gateway)
    return app

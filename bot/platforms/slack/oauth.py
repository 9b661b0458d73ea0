"""Slack in many workspaces: OAuth distribution with Bolt's own flow.

`/slack/install` and `/slack/oauth_redirect` are Bolt's (AsyncOAuthSettings); installations and
install states live on the project's database (bot/store/slack_installations.py), bot tokens
encrypted with the evidence key. Bolt's authorize finds the team's token for every request.

Two things Bolt's authorize does not reach are handled here:
- the listeners' shared clients (the Gateway's, the actor directory's) were built once for the
  app: `TeamRoutedClient` uses the token that authorize found for the request being handled,
  kept in a context variable that each request's task (and the tasks it starts) sees; the
  actor directory's caches are kept per team (`TeamActorDirectory`);
- work done outside any request (the outbox, inbox replays) goes through
  `SlackGateway.client_for(team_id)`, which reads the installation store.

Uninstalling the app (`app_uninstalled`) or revoking its tokens (`tokens_revoked`) deletes the
team's installation and drops its cached client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from slack_bolt import BoltResponse
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.types import Actor
from bot.platforms.slack.actors import ActorDirectory
from bot.settings import Settings
from bot.store.repos import Store
from bot.store.slack_installations import SlackInstallationStore, SlackOAuthStateStore, TokenCipher

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.platforms.slack.gateway import SlackGateway

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# The bot scopes of deploy/slack-manifest.yml: what an install asks each workspace for.
BOT_SCOPES = (
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "channels:read",
    "groups:read",
    "chat:write",
    "commands",
    "files:read",
    "files:write",
    "im:write",
    "users:read",
    "usergroups:read",
)

# The bot token that authorize found for the request this task is handling.
request_token: ContextVar[str | None] = ContextVar("veille_slack_request_token", default=None)
request_team: ContextVar[str | None] = ContextVar("veille_slack_request_team", default=None)


class TeamRoutedClient(AsyncWebClient):
    """A Web API client whose token is the current request's team's (OAuth mode): the one
    client that listeners share then calls each workspace with its own token."""

    @property  # type: ignore[override]
    def token(self) -> str | None:
        return request_token.get()

    @token.setter
    def token(self, value: str | None) -> None:
        # AsyncWebClient.__init__ assigns a token: a shared client has none of its own.
        if value:
            raise ValueError("a team-routed client takes its token from the request")

    def bound(self) -> AsyncWebClient:
        """A plain client fixed to the current team's token, for work that outlives the
        request (a revealed original deleted minutes later)."""
        return AsyncWebClient(
            token=request_token.get(), base_url=self.base_url, timeout=self.timeout
        )


class TeamActorDirectory(ActorDirectory):
    """One actor directory per workspace: user groups, admin flags and names are a team's own,
    and a cache shared by every team would hide a second team's moderators for minutes."""

    def __init__(self, client: AsyncWebClient) -> None:
        super().__init__(client)
        self._teams: dict[str, ActorDirectory] = {}

    def _directory(self) -> ActorDirectory:
        team = request_team.get() or ""
        if team not in self._teams:
            self._teams[team] = ActorDirectory(self.client, self.ttl_s)
        return self._teams[team]

    def forget(self) -> None:
        for directory in self._teams.values():
            directory.forget()

    async def actor(self, user_id: str, *, is_bot: bool = False) -> Actor:
        return await self._directory().actor(user_id, is_bot=is_bot)

    async def group_options(self) -> list[tuple[str, str]]:
        return await self._directory().group_options()


def authorization_url(settings: Settings) -> str:
    """Slack's authorize page, beside the Web API (SLACK_API_URL's host, the fake in tests)."""
    base = (settings.slack_api_url or "https://slack.com/api/").rstrip("/")
    return base.removesuffix("/api") + "/oauth/v2/authorize"


def installation_store(store: Store, cipher: TokenCipher) -> SlackInstallationStore:
    """Installations on the project's database, tokens sealed with the evidence key."""
    return SlackInstallationStore(store, cipher)


def _ours(installations: object) -> SlackInstallationStore:
    if not isinstance(installations, SlackInstallationStore):
        raise TypeError("Slack OAuth needs the database installation store")
    return installations


def oauth_settings(settings: Settings, installations: object) -> AsyncOAuthSettings:
    """Bolt's OAuth flow on our tables. The install path redirects straight to Slack (no page
    of ours in between); only bot scopes are asked, so only bot installations are stored."""
    assert settings.slack_client_id is not None and settings.slack_client_secret is not None
    store = _ours(installations)
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        install_page_rendering_enabled=False,
        authorization_url=authorization_url(settings),
        installation_store=store,
        installation_store_bot_only=True,
        state_store=SlackOAuthStateStore(store.store),
        logger=log,
    )


async def remember_the_team_token(
    context: AsyncBoltContext, next: Callable[[], Awaitable[BoltResponse]]
) -> BoltResponse:
    """Runs after Bolt's authorize, in the request's task: the token it found becomes the one
    the shared clients use for this request (listeners run in tasks that copy this context)."""
    request_token.set(context.bot_token)
    request_team.set(context.team_id)
    return await next()


def register(app: AsyncApp, gateway: SlackGateway) -> None:
    """Uninstall and token revocation: the team's installation goes, and its cached client."""
    installations = _ours(gateway.installations)

    @app.event("app_uninstalled")
    async def on_uninstalled(context: AsyncBoltContext) -> None:
        await installations.async_delete_all(
            enterprise_id=context.enterprise_id, team_id=context.team_id
        )
        gateway.forget(context.team_id)
        log.info("slack: uninstalled from team %s, its token deleted", context.team_id)

    @app.event("tokens_revoked")
    async def on_tokens_revoked(event: dict[str, Any], context: AsyncBoltContext) -> None:
        # Only the bot's token is kept: a revoked user token has nothing to delete.
        if (event.get("tokens") or {}).get("bot"):
            await installations.async_delete_bot(
                enterprise_id=context.enterprise_id, team_id=context.team_id
            )
            gateway.forget(context.team_id)
            log.info("slack: bot token of team %s revoked, deleted", context.team_id)

"""Veille's Gateway for Slack: how the core downloads files and posts, updates and deletes messages.

A bot token cannot delete other people's messages on Slack. When the installer granted an admin
user token (SLACK_ADMIN_TOKEN) deletions use it; otherwise `can_delete_messages` is False and the
core posts a tombstone reply, alerts moderators and asks the author to delete instead.

Installed in many workspaces (OAuth, bot/platforms/slack/oauth.py), every outbox action is made
with its workspace's token: `client_for(team_id)` reads the installation store (cached a minute,
dropped at uninstall); calls made while a request is handled use the request's team's token.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from yarl import URL

from bot.core.gateway import Button, Card, GatewayError
from bot.core.types import MediaRef, Platform
from bot.platforms.slack.render import card_blocks, card_text, notice_blocks

log = logging.getLogger(__name__)

# Slack errors that trying again cannot fix; anything else (internal_error, 5xx, network) may pass.
_PERMANENT = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "cant_delete_message",
        "cant_update_message",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "no_permission",
        "user_not_found",
        "file_not_found",
        "invalid_blocks",
        "msg_too_long",
        "restricted_action",
        "edit_window_closed",
        "cannot_dm_bot",
        "user_not_in_channel",
        "message_not_found",
    }
)
# Ephemeral refusals a DM can work around (the bot or the person left the channel).
_NO_EPHEMERAL = frozenset({"not_in_channel", "channel_not_found", "user_not_in_channel"})
_CHUNK = 64 * 1024
# How long a revealed original stays in the moderator's DM before Veille deletes it.
REVEAL_TTL_S = 300.0
_MAX_REDIRECTS = 3
# What a Web API call can raise: Slack's refusals, the SDK's request errors, the network.
_FAILURES = (TimeoutError, SlackApiError, SlackRequestError, aiohttp.ClientError)
# A team's client is read again after this: a reinstall's new token is picked up.
CLIENT_TTL_S = 60.0
CARD_EVENT = "veille_card"  # message metadata type of a card: its payload holds the outbox key
LOOKBACK = 100  # recent messages searched for a card whose post may already have happened
# url_private names the file's workspace: https://files.slack.com/files-pri/T0123-F0456/name
_FILE_TEAM = re.compile(r"/files-pri/([TE][A-Z0-9]+)-")


class Installations(Protocol):
    """Where a workspace's bot token is found (slack_sdk's AsyncInstallationStore)."""

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Any: ...


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code, or the HTTP status when the body was not Slack's JSON (a proxy's
    HTML page, a 502): the SDK keeps such a body as a string, whose `.get` would raise."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error") or "unknown")
    return f"http_{getattr(exc.response, 'status_code', 'error')}"


def to_gateway_error(exc: Exception) -> GatewayError:
    """Map a slack_sdk or network failure to the core's GatewayError (retryable, retry_after)."""
    if isinstance(exc, SlackApiError):
        error = slack_error(exc)
        if exc.response.status_code == 429 or error == "ratelimited":
            retry_after = float(exc.response.headers.get("Retry-After", "1") or 1)
            return GatewayError("slack: ratelimited", retryable=True, retry_after=retry_after)
        return GatewayError(f"slack: {error}", retryable=error not in _PERMANENT)
    if isinstance(exc, SlackRequestError):
        return GatewayError(f"slack: {exc}", retryable=True)
    return GatewayError(f"slack: {type(exc).__name__}", retryable=True)


class SlackGateway:
    """Implements bot.core.gateway.Gateway with Slack's Web API.

    `client` carries the bot token and SLACK_API_URL; `admin_token` is the optional user token
    used only for chat.delete. `session` is the one aiohttp session for private file downloads.
    With `installations` (OAuth mode) `client` has no token of its own: each workspace's comes
    from the store.
    """

    platform = Platform.SLACK

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        admin_token: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 10.0,
        reveal_ttl_s: float = REVEAL_TTL_S,
        installations: Installations | None = None,
    ) -> None:
        self.client = client
        self.installations = installations
        self._clients: dict[str, tuple[float, AsyncWebClient]] = {}  # team id -> (read at, client)
        self.admin_token = admin_token
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.reveal_ttl_s = reveal_ttl_s
        self._reveals: dict[str, asyncio.Task[None]] = {}  # uploaded file id -> its deletion
        self._reveal_clients: dict[str, AsyncWebClient] = {}  # ... -> the client that uploaded it

    @property
    def can_delete_messages(self) -> bool:
        return self.admin_token is not None

    async def client_for(self, team_id: str) -> AsyncWebClient:
        """The client carrying `team_id`'s bot token: the one client in single-token mode; in
        OAuth mode the team's installation (a workspace not installed is a permanent failure)."""
        if self.installations is None:
            return self.client
        cached = self._clients.get(team_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CLIENT_TTL_S:
            return cached[1]
        bot = await self.installations.async_find_bot(enterprise_id=None, team_id=team_id)
        if bot is None or not bot.bot_token:
            self._clients.pop(team_id, None)
            raise GatewayError(f"slack: workspace {team_id} is not installed", retryable=False)
        client = AsyncWebClient(
            token=bot.bot_token, base_url=self.client.base_url, timeout=self.client.timeout
        )
        self._clients[team_id] = (now, client)
        return client

    def forget(self, team_id: str | None) -> None:
        """Drop `team_id`'s cached client (uninstalled, token revoked)."""
        self._clients.pop(team_id or "", None)

    def _request_client(self) -> AsyncWebClient:
        """A client fixed to the token in use now, for work that outlives the request."""
        bound = getattr(self.client, "bound", None)
        return bound() if callable(bound) else self.client

    async def _download_token(self, url: URL) -> str | None:
        if self.installations is None:
            return self.client.token
        found = _FILE_TEAM.search(url.path)
        if found is None:
            return self.client.token
        return (await self.client_for(found.group(1))).token

    async def close(self) -> None:
        # Stopping: revealed originals go now rather than outliving the process.
        for file_id, task in list(self._reveals.items()):
            task.cancel()
            await self._delete_reveal(file_id)
        if self._session is not None and not self._session.closed:
            await self._session.close()

    # ------------------------------------------------------------------ media
    async def download(self, ref: MediaRef, max_bytes: int) -> bytes:
        """Download `url_private` with the bot token, refusing anything over `max_bytes`.

        Slack answers a bad token with its HTML sign-in page and status 200, so an HTML body is
        an authorisation failure, not an image. Redirects are followed by hand (a few at most)
        and the bearer token only goes to the host the file URL named.
        """
        if ref.size is not None and ref.size > max_bytes:
            raise GatewayError(f"slack: file {ref.media_id} is {ref.size} bytes", retryable=False)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = URL(ref.url)
        token_host = url.host
        token = await self._download_token(url)
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                headers = {"Authorization": f"Bearer {token}"} if url.host == token_host else {}
                async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                        url = url.join(URL(resp.headers["Location"]))
                        continue
                    return await self._read_file(resp, ref, max_bytes)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise to_gateway_error(exc) from exc
        raise GatewayError(f"slack: too many redirects for file {ref.media_id}", retryable=False)

    @staticmethod
    async def _read_file(resp: aiohttp.ClientResponse, ref: MediaRef, max_bytes: int) -> bytes:
        if resp.status == 429:
            raise GatewayError(
                "slack: download ratelimited",
                retryable=True,
                retry_after=float(resp.headers.get("Retry-After", "1")),
            )
        if resp.status != 200:
            raise GatewayError(
                f"slack: download status {resp.status}", retryable=resp.status >= 500
            )
        if resp.content_type.startswith("text/html"):
            raise GatewayError("slack: download refused (sign-in page)", retryable=False)
        data = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK):
            data += chunk
            if len(data) > max_bytes:
                raise GatewayError(
                    f"slack: file {ref.media_id} over {max_bytes} bytes", retryable=False
                )
        return bytes(data)

    # ------------------------------------------------------------------ messages
    async def delete_message(self, workspace_id: str, channel_id: str, message_id: str) -> None:
        """Delete with the admin user token; a message already gone counts as deleted."""
        if self.admin_token is None:
            raise GatewayError(
                "slack: no admin token, cannot delete others' messages", retryable=False
            )
        try:
            await (await self.client_for(workspace_id)).chat_delete(
                token=self.admin_token, channel=channel_id, ts=message_id
            )
        except SlackApiError as exc:
            if slack_error(exc) == "message_not_found":
                return
            raise to_gateway_error(exc) from exc
        except (TimeoutError, SlackRequestError, aiohttp.ClientError) as exc:
            raise to_gateway_error(exc) from exc

    async def post_card(
        self,
        workspace_id: str,
        channel_id: str,
        card: Card,
        *,
        thread_id: str | None = None,
        dedupe_key: str | None = None,
        repeat: bool = False,
    ) -> str:
        """Post the card's blocks; its image (a blurred preview) goes in the card's thread.

        Slack has no idempotent post, so the card carries `dedupe_key` in its message metadata
        and a `repeat` (an earlier try began and never finished) first looks for a message of
        this bot with that key among the channel's (or thread's) recent ones: found, its ts is
        the answer and nothing is posted again."""
        client = await self.client_for(workspace_id)
        try:
            if repeat and dedupe_key:
                try:
                    found = await self._posted_with(client, channel_id, thread_id, dedupe_key)
                except SlackApiError as exc:  # cannot look: a second card beats no card
                    log.warning("slack: could not look for card %s: %s", dedupe_key, exc)
                    found = None
                if found is not None:
                    return found
            metadata = (
                {"event_type": CARD_EVENT, "event_payload": {"key": dedupe_key}}
                if dedupe_key
                else None
            )
            resp = await client.chat_postMessage(
                channel=channel_id,
                text=card_text(card),
                blocks=card_blocks(card),
                thread_ts=thread_id,
                unfurl_links=False,
                unfurl_media=False,
                metadata=metadata,
            )
            ts = str(resp["ts"])
            if card.image_png is not None:
                await client.files_upload_v2(
                    channel=channel_id,
                    thread_ts=thread_id or ts,
                    file=card.image_png,
                    filename=card.image_name,
                    title=card.title[:250],
                )
            return ts
        except _FAILURES as exc:
            raise to_gateway_error(exc) from exc

    @staticmethod
    async def _posted_with(
        client: AsyncWebClient, channel_id: str, thread_id: str | None, key: str
    ) -> str | None:
        """The ts of a recent message in the channel (or thread) whose metadata carries `key`."""
        if thread_id:
            resp = await client.conversations_replies(
                channel=channel_id, ts=thread_id, limit=LOOKBACK, include_all_metadata=True
            )
        else:
            resp = await client.conversations_history(
                channel=channel_id, limit=LOOKBACK, include_all_metadata=True
            )
        for message in resp.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == CARD_EVENT and payload.get("key") == key:
                return str(message["ts"])
        return None

    async def update_card(
        self, workspace_id: str, channel_id: str, message_id: str, card: Card
    ) -> None:
        # The preview image was uploaded with the first post; an update only changes the blocks.
        client = await self.client_for(workspace_id)
        try:
            await client.chat_update(
                channel=channel_id, ts=message_id, text=card_text(card), blocks=card_blocks(card)
            )
        except _FAILURES as exc:
            raise to_gateway_error(exc) from exc

    async def post_text(
        self, workspace_id: str, channel_id: str, text: str, *, thread_id: str | None = None
    ) -> str:
        client = await self.client_for(workspace_id)
        try:
            resp = await client.chat_postMessage(
                channel=channel_id, text=text, thread_ts=thread_id, unfurl_links=False
            )
            return str(resp["ts"])
        except _FAILURES as exc:
            raise to_gateway_error(exc) from exc

    async def send_private(
        self,
        workspace_id: str,
        user_id: str,
        text: str,
        *,
        channel_id: str | None = None,
        buttons: tuple[Button, ...] = (),
    ) -> None:
        """Ephemeral or DM; with `buttons` (an author's Appeal) always a DM, since an ephemeral
        message vanishes on reload and the notice must outlive it."""
        client = await self.client_for(workspace_id)
        if not buttons:
            await self._post_private(client, user_id, text, channel_id=channel_id)
            return
        try:
            opened = await client.conversations_open(users=user_id)
            await client.chat_postMessage(
                channel=str(opened["channel"]["id"]), text=text, blocks=notice_blocks(text, buttons)
            )
        except _FAILURES as exc:
            raise to_gateway_error(exc) from exc

    async def post_private(
        self,
        user_id: str,
        text: str,
        *,
        channel_id: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        """Ephemeral in `channel_id` when given (only that person sees it), else a DM.

        A DM channel id gets a plain post (it is private already and, unlike an ephemeral
        message, survives a reload); an ephemeral that Slack refuses falls back to a DM.
        """
        await self._post_private(self.client, user_id, text, channel_id=channel_id, blocks=blocks)

    @staticmethod
    async def _post_private(
        client: AsyncWebClient,
        user_id: str,
        text: str,
        *,
        channel_id: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        try:
            if channel_id and not channel_id.startswith("D"):
                try:
                    await client.chat_postEphemeral(
                        channel=channel_id, user=user_id, text=text, blocks=blocks
                    )
                    return
                except SlackApiError as exc:
                    if slack_error(exc) not in _NO_EPHEMERAL:
                        raise
            if not channel_id or not channel_id.startswith("D"):
                channel_id = str((await client.conversations_open(users=user_id))["channel"]["id"])
            await client.chat_postMessage(channel=channel_id, text=text, blocks=blocks)
        except _FAILURES as exc:
            raise to_gateway_error(exc) from exc

    async def send_private_image(
        self, user_id: str, image_png: bytes, filename: str, text: str
    ) -> None:
        """An image only `user_id` sees (a revealed original): Slack has no ephemeral files,
        so it goes to a DM with that person, and is deleted after `reveal_ttl_s` (or when
        Veille stops): evidence must not outlive its review in someone's DMs."""
        client = self._request_client()
        try:
            opened = await client.conversations_open(users=user_id)
            uploaded = await client.files_upload_v2(
                channel=opened["channel"]["id"],
                file=image_png,
                filename=filename,
                initial_comment=text or None,
            )
        except _FAILURES as exc:
            raise to_gateway_error(exc) from exc
        files = uploaded.get("files") or ([uploaded["file"]] if uploaded.get("file") else [])
        for file in files:
            file_id = str(file.get("id") or "")
            if file_id:
                self._reveals[file_id] = asyncio.create_task(self._expire_reveal(file_id))
                self._reveal_clients[file_id] = client

    async def _expire_reveal(self, file_id: str) -> None:
        await asyncio.sleep(self.reveal_ttl_s)
        await self._delete_reveal(file_id)

    async def _delete_reveal(self, file_id: str) -> None:
        self._reveals.pop(file_id, None)
        client = self._reveal_clients.pop(file_id, self.client)
        try:
            await client.files_delete(file=file_id)
            log.info("slack: revealed original %s deleted from the DM", file_id)
        except _FAILURES as exc:  # already deleted by the person, or Slack unreachable
            log.warning(
                "slack: could not delete revealed original %s: %s",
                file_id,
                slack_error(exc) if isinstance(exc, SlackApiError) else exc,
            )

    async def timeout_member(
        self, workspace_id: str, user_id: str, seconds: int, reason: str
    ) -> None:
        # Slack has no member timeout for apps; the ticket and the alert carry the decision.
        log.info("slack has no member timeout; skipped for %s (%s)", user_id, reason)

"""`DiscordGateway`: how the core acts on Discord (bot.core.gateway.Gateway).

Every call maps discord.py failures onto `GatewayError` so the core's outbox can decide:
rate limits and server errors are retryable, missing permissions and unknown objects are not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

import aiohttp
import discord

from bot.core.gateway import Button, Card, GatewayError
from bot.core.types import MediaRef, Platform
from bot.platforms.discord.render import render_buttons, render_card

T = TypeVar("T")
_CHUNK = 64 * 1024
_MAX_TIMEOUT = 28 * 24 * 3600  # Discord refuses timeouts longer than 28 days


async def translate_errors(call: Awaitable[T], what: str) -> T:
    """Await `call`, raising GatewayError for everything Discord or the network can throw."""
    try:
        return await call
    except discord.RateLimited as exc:  # longer than max_ratelimit_timeout: the outbox waits
        raise GatewayError(f"{what}: rate limited", retry_after=exc.retry_after) from exc
    except (discord.Forbidden, discord.NotFound) as exc:
        raise GatewayError(f"{what}: {exc.status} {exc.text}", retryable=False) from exc
    except discord.DiscordServerError as exc:
        raise GatewayError(f"{what}: Discord server error {exc.status}") from exc
    except discord.HTTPException as exc:
        raise GatewayError(f"{what}: {exc.status} {exc.text}", retryable=exc.status == 429) from exc
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise GatewayError(f"{what}: network error {exc!r}") from exc


class DiscordGateway:
    """The core's port to Discord. Workspace ids are guild ids; channel ids may be threads.

    It needs only discord.py's `Client` (REST and the guild cache), not Veille's client:
    client.py builds it, and nothing here imports client.py back."""

    platform = Platform.DISCORD

    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self._session: aiohttp.ClientSession | None = None

    @property
    def can_delete_messages(self) -> bool:
        return True  # with Manage Messages, which the setup wizard checks

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _channel(self, workspace_id: str, channel_id: str) -> discord.PartialMessageable:
        # Partial objects need no cache: the core may act on channels the bot never saw.
        return self.client.get_partial_messageable(
            int(channel_id), guild_id=int(workspace_id) if workspace_id else None
        )

    async def download(self, ref: MediaRef, max_bytes: int) -> bytes:
        """Stream an attachment from Discord's CDN, refusing more than `max_bytes`."""
        if ref.size is not None and ref.size > max_bytes:
            raise GatewayError(f"attachment {ref.media_id} is {ref.size} bytes", retryable=False)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            async with self._session.get(ref.url) as response:
                if response.status in (404, 403, 410):
                    raise GatewayError(f"attachment gone: {response.status}", retryable=False)
                if response.status != 200:
                    raise GatewayError(f"attachment download: {response.status}")
                data = bytearray()
                async for chunk in response.content.iter_chunked(_CHUNK):
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise GatewayError(
                            f"attachment {ref.media_id} over {max_bytes} bytes", retryable=False
                        )
                return bytes(data)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise GatewayError(f"attachment download: {exc!r}") from exc

    async def delete_message(self, workspace_id: str, channel_id: str, message_id: str) -> None:
        """Idempotent: a message that is already gone counts as deleted."""
        message = self._channel(workspace_id, channel_id).get_partial_message(int(message_id))
        try:
            await translate_errors(message.delete(), "delete message")
        except GatewayError as exc:
            if isinstance(exc.__cause__, discord.NotFound):
                return
            raise

    async def post_card(
        self,
        workspace_id: str,
        channel_id: str,
        card: Card,
        *,
        thread_id: str | None = None,
        dedupe_key: str | None = None,
        repeat: bool = False,  # the nonce makes every repeat safe: nothing to look up
    ) -> str:
        rendered = render_card(card)
        channel = self._channel(workspace_id, thread_id or channel_id)
        kwargs: dict[str, Any] = {"embed": rendered.embed}
        if rendered.view is not None:
            kwargs["view"] = rendered.view
        if rendered.file is not None:
            kwargs["file"] = rendered.file
        if card.fallback_text:
            kwargs["content"] = card.fallback_text[:2000]
        if dedupe_key:
            # An enforced nonce: a repeat of this post (its answer lost, a crash before the
            # outbox recorded it) returns the card Discord already made instead of a second one.
            kwargs["nonce"] = hashlib.sha256(dedupe_key.encode()).hexdigest()[:25]
        message = await translate_errors(channel.send(**kwargs), "post card")
        return str(message.id)

    async def update_card(
        self, workspace_id: str, channel_id: str, message_id: str, card: Card
    ) -> None:
        rendered = render_card(card)
        message = self._channel(workspace_id, channel_id).get_partial_message(int(message_id))
        # An empty view removes the buttons of a closed ticket; new files replace old ones.
        kwargs: dict[str, Any] = {
            "embed": rendered.embed,
            "view": rendered.view or discord.ui.View(timeout=None),
        }
        if rendered.file is not None:
            kwargs["attachments"] = [rendered.file]
        await translate_errors(message.edit(**kwargs), "update card")

    async def post_text(
        self, workspace_id: str, channel_id: str, text: str, *, thread_id: str | None = None
    ) -> str:
        channel = self._channel(workspace_id, thread_id or channel_id)
        message = await translate_errors(channel.send(content=text[:2000]), "post text")
        return str(message.id)

    async def send_private(
        self,
        workspace_id: str,
        user_id: str,
        text: str,
        *,
        channel_id: str | None = None,
        buttons: tuple[Button, ...] = (),
    ) -> None:
        """A DM, with `buttons` (an author's Appeal) as components: pressing one later arrives as
        a DM interaction that `TicketButton` routes, whatever restarts happened in between.
        People who closed their DMs get nothing: Discord has no per-user channel post."""
        dm = await translate_errors(
            self.client.create_dm(discord.Object(id=int(user_id))), "open DM"
        )
        kwargs: dict[str, Any] = {"content": text[:2000]}
        view = render_buttons(buttons)
        if view is not None:
            kwargs["view"] = view
        await translate_errors(dm.send(**kwargs), "send DM")

    async def timeout_member(
        self, workspace_id: str, user_id: str, seconds: int, reason: str
    ) -> None:
        until = timedelta(seconds=max(1, min(seconds, _MAX_TIMEOUT)))
        guild = self.client.get_guild(int(workspace_id))
        if guild is None:  # a worker process holds no gateway connection, hence no cache
            await translate_errors(
                self.client.http.edit_member(
                    int(workspace_id),
                    int(user_id),
                    reason=reason[:512],
                    communication_disabled_until=(discord.utils.utcnow() + until).isoformat(),
                ),
                "timeout member",
            )
            return
        member = guild.get_member(int(user_id))
        if member is None:  # no member intent: the cache rarely has them
            member = await translate_errors(guild.fetch_member(int(user_id)), "fetch member")
        await translate_errors(member.timeout(until, reason=reason[:512]), "timeout member")

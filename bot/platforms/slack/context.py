"""What every Slack listener shares: the core facade, the Gateway, the actor directory, and how
a core `Reply` is shown to the person who asked (ephemeral, DM or channel post)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.core.ai_apps import AiApps
from bot.core.gateway import Reply
from bot.core.i18n import normalise_locale, t
from bot.core.types import Platform
from bot.platforms.slack.actors import ActorDirectory
from bot.platforms.slack.gateway import SlackGateway
from bot.platforms.slack.render import reply_blocks

if TYPE_CHECKING:
    from bot.core.service import Veille


@dataclass
class SlackContext:
    veille: Veille
    gateway: SlackGateway
    actors: ActorDirectory
    ai_apps: AiApps = field(default_factory=AiApps)

    async def locale(self, team_id: str) -> str:
        """The workspace's language (the setup wizard sets it); English when unknown."""
        view = await self.veille.workspace(Platform.SLACK, team_id)
        return normalise_locale(view.locale)

    async def text(self, team_id: str, key: str, **values: object) -> str:
        return t(key, await self.locale(team_id), **values)

    async def deliver(self, reply: Reply, *, user_id: str, channel_id: str | None) -> None:
        """Show `reply` to `user_id`: privately (ephemeral in the channel, else a DM) unless the
        core marked it public; an image (a revealed original) always goes by DM."""
        text = reply.text or (reply.card.fallback_text or reply.card.title if reply.card else "")
        blocks = reply_blocks(reply.text, reply.card) if (reply.card or reply.text) else None
        if reply.image_png is not None:
            await self.gateway.send_private_image(
                user_id, reply.image_png, "veille-reveal.png", text
            )
        elif not reply.ephemeral and channel_id:
            await self.gateway.client.chat_postMessage(
                channel=channel_id, text=text or " ", blocks=blocks
            )
        else:
            await self.gateway.post_private(
                user_id, text or " ", channel_id=channel_id, blocks=blocks
            )

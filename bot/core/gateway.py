"""The port through which the core acts on a platform. Each adapter implements `Gateway`.

The core renders everything a person reads (localised text, ticket cards, digests) into the
neutral `Card`; an adapter only maps a Card to a Discord embed + components or to Slack
Block Kit, and Button actions back to core calls through the custom id `veille:<action>:<ticket>`
(the actions themselves are declared in `bot.core.actions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.core.actions import ACTIONS, ButtonStyle
from bot.core.types import MediaRef, Platform
from bot.core.verdict import Severity

BUTTON_PREFIX = "veille"


@dataclass(frozen=True)
class Button:
    action: str
    label: str
    ticket_id: int
    style: ButtonStyle = "secondary"

    @property
    def custom_id(self) -> str:
        return button_id(self.action, self.ticket_id)


def button_id(action: str, ticket_id: int) -> str:
    """Custom ids carry the ticket, so buttons keep working after a restart."""
    return f"{BUTTON_PREFIX}:{action}:{ticket_id}"


def parse_button_id(custom_id: str) -> tuple[str, int] | None:
    """(action, ticket id) of a Veille button; None for another app's id or an unknown action."""
    parts = custom_id.split(":")
    if len(parts) != 3 or parts[0] != BUTTON_PREFIX or parts[1] not in ACTIONS:
        return None
    try:
        return parts[1], int(parts[2])
    except ValueError:
        return None


@dataclass(frozen=True)
class Card:
    """A platform-neutral rich message: a ticket card, a status reply, a digest."""

    title: str
    body: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    severity: Severity | None = None  # the adapter picks a colour from it
    footer: str = ""
    image_png: bytes | None = None
    image_name: str = "veille.png"
    spoiler: bool = False  # Discord: SPOILER_ file name; Slack: image behind a button
    buttons: tuple[Button, ...] = ()
    fallback_text: str = ""  # plain text for notifications and screen readers
    # Fields whose value is a platform id: (field index, "channel" | "user", id). The value stays
    # the plain id; an adapter may show a mention instead (Discord: <#id>, <@id>).
    mentions: tuple[tuple[int, str, str], ...] = ()


class GatewayError(RuntimeError):
    """A platform call failed. `retryable` tells the outbox whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Gateway(Protocol):
    platform: Platform

    @property
    def can_delete_messages(self) -> bool:
        """False on Slack without an admin user token: the core then posts a tombstone instead."""
        ...

    async def download(self, ref: MediaRef, max_bytes: int) -> bytes:
        """The bytes of a platform-hosted attachment (with the bot's credentials)."""
        ...

    async def delete_message(self, workspace_id: str, channel_id: str, message_id: str) -> None: ...

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
        """Post a card; return the platform message id. `dedupe_key` (the outbox action's key)
        makes a repeated post return the message the first one made: Discord enforces it as a
        nonce; Slack tags the message with it and, when `repeat` says an earlier try of this post
        began and never finished (a crash, a lost answer), looks for that message first."""
        ...

    async def update_card(
        self, workspace_id: str, channel_id: str, message_id: str, card: Card
    ) -> None: ...

    async def post_text(
        self, workspace_id: str, channel_id: str, text: str, *, thread_id: str | None = None
    ) -> str: ...

    async def send_private(
        self,
        workspace_id: str,
        user_id: str,
        text: str,
        *,
        channel_id: str | None = None,
        buttons: tuple[Button, ...] = (),
    ) -> None:
        """A DM (Discord) or an ephemeral/DM message (Slack) to one person. With `buttons`
        (an author's Appeal) it is a DM on both platforms: an ephemeral message vanishes."""
        ...

    async def timeout_member(
        self, workspace_id: str, user_id: str, seconds: int, reason: str
    ) -> None: ...


@dataclass
class Reply:
    """What a command or button handler answers the person who used it."""

    text: str = ""
    card: Card | None = None
    ephemeral: bool = True
    image_png: bytes | None = None  # e.g. a revealed original, only ever ephemeral
    # The form to open, then call back with its text: a ticket action's (its `form` in
    # bot.core.actions) or "setup" (the wizard).
    open_modal: str | None = None
    ok: bool = True
    extras: dict[str, object] = field(default_factory=dict)

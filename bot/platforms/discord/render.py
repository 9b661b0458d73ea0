"""Neutral `Card`s → Discord embed, buttons and file (no wording here: the core wrote it)."""

from __future__ import annotations

import io
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import discord

from bot.core.gateway import Button, Card, button_id, parse_button_id
from bot.core.verdict import Severity

# A press on a ticket button: (interaction, action, ticket id).
PressHandler = Callable[[discord.Interaction[Any], str, int], Awaitable[None]]

COLOURS = {
    Severity.NONE: discord.Colour.green(),
    Severity.REVIEW: discord.Colour.gold(),
    Severity.QUARANTINE: discord.Colour.orange(),
    Severity.CRITICAL: discord.Colour.red(),
}
STYLES = {
    "primary": discord.ButtonStyle.primary,
    "secondary": discord.ButtonStyle.secondary,
    "success": discord.ButtonStyle.success,
    "danger": discord.ButtonStyle.danger,
}
# Discord's embed limits; longer text is cut rather than rejected with a 400.
_TITLE, _DESCRIPTION, _FIELDS, _FIELD_NAME, _FIELD_VALUE, _FOOTER = 256, 4096, 25, 256, 1024, 2048
_BUTTONS = 25  # 5 rows of 5


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class RenderedCard:
    embed: discord.Embed
    view: discord.ui.View | None
    file: discord.File | None


def _colour(card: Card) -> discord.Colour:
    """By severity; cards that are not about a detection (status, help) get Discord's blurple."""
    if card.severity is None:
        return discord.Colour.blurple()
    return COLOURS.get(card.severity, discord.Colour.blurple())


def card_file_name(card: Card) -> str:
    """Discord blurs attachments whose name starts with SPOILER_ until someone clicks them."""
    return f"SPOILER_{card.image_name}" if card.spoiler else card.image_name


def _mention(kind: str, platform_id: str) -> str | None:
    """`<#id>` / `<@id>` for a Discord snowflake: the client shows the channel's or member's
    name (embeds never ping anyone); None for anything that is not a snowflake."""
    if not platform_id.isdigit():
        return None
    return f"<#{platform_id}>" if kind == "channel" else f"<@{platform_id}>"


def render_embed(card: Card) -> discord.Embed:
    embed = discord.Embed(
        title=_cut(card.title, _TITLE) or None,
        description=_cut(card.body, _DESCRIPTION) or None,
        colour=_colour(card),
    )
    mentions = {index: _mention(kind, value) for index, kind, value in card.mentions}
    for index, (name, value) in enumerate(card.fields[:_FIELDS]):
        value = mentions.get(index) or value
        embed.add_field(
            name=_cut(name, _FIELD_NAME) or "\u200b",
            value=_cut(value, _FIELD_VALUE) or "\u200b",
            inline=True,
        )
    if card.footer:
        embed.set_footer(text=_cut(card.footer, _FOOTER))
    # An image shown inside an embed is never blurred, so a spoiler image stays a plain
    # attachment below the embed instead.
    if card.image_png is not None and not card.spoiler:
        embed.set_image(url=f"attachment://{card_file_name(card)}")
    return embed


def render_view(card: Card) -> discord.ui.View | None:
    return render_buttons(card.buttons)


class TicketButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"veille:(?P<action>[a-z_]+):(?P<ticket>[0-9]+)",
):
    """A ticket action button, matched on its custom id `veille:<action>:<ticket>`:
    `from_custom_id` rebuilds it from the id alone, so a card posted before a restart still
    works and nothing about it is kept in memory.

    A press goes to `on_press`, which actions.py installs: answering a press renders cards
    (replies → this module), so this module cannot import the code that answers."""

    on_press: ClassVar[PressHandler | None] = None

    def __init__(
        self,
        action: str,
        ticket_id: int,
        *,
        label: str = "",
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or action, style=style, custom_id=button_id(action, ticket_id)
            )
        )
        self.action = action
        self.ticket_id = ticket_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> TicketButton:
        parsed = parse_button_id(item.custom_id or "")  # type: ignore[attr-defined]
        if parsed is None:  # the template matched but the action is not one the core knows
            raise ValueError(f"unknown ticket action in {item.custom_id!r}")  # type: ignore[attr-defined]
        return cls(parsed[0], parsed[1])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if TicketButton.on_press is None:
            raise RuntimeError(
                "no handler for ticket buttons: import bot.platforms.discord.actions"
            )
        await TicketButton.on_press(interaction, self.action, self.ticket_id)


def render_buttons(buttons: tuple[Button, ...]) -> discord.ui.View | None:
    """Ticket buttons as a persistent view (a card's, or those of a private message)."""
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons[:_BUTTONS]:
        view.add_item(
            TicketButton(
                button.action,
                button.ticket_id,
                label=button.label,
                style=STYLES.get(button.style, discord.ButtonStyle.secondary),
            )
        )
    return view


def render_card(card: Card) -> RenderedCard:
    file = None
    if card.image_png is not None:
        file = discord.File(
            io.BytesIO(card.image_png), filename=card_file_name(card), spoiler=card.spoiler
        )
    return RenderedCard(render_embed(card), render_view(card), file)

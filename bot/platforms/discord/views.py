"""Ticket buttons and the note/resolve modal.

Buttons are `DynamicItem`s matched on their custom id `veille:<action>:<ticket>`, so a card
posted before a restart still works: nothing about it is kept in memory. The core checks who
pressed (anyone who sees a channel can press its buttons).
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.core.gateway import button_id, parse_button_id
from bot.core.i18n import t
from bot.core.types import Platform
from bot.platforms.discord.replies import answer, interaction_actor, veille_of, workspace_id

_TEMPLATE = r"veille:(?P<action>[a-z_]+):(?P<ticket>[0-9]+)"
MODAL_PREFIX = "veille-modal"


class TicketButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=_TEMPLATE):
    """A ticket action button; `from_custom_id` rebuilds it from the id alone."""

    def __init__(self, action: str, ticket_id: int, *, label: str = "",
                 style: discord.ButtonStyle = discord.ButtonStyle.secondary) -> None:
        super().__init__(discord.ui.Button(label=label or action, style=style,
                                           custom_id=button_id(action, ticket_id)))
        self.action = action
        self.ticket_id = ticket_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any],
                             item: discord.ui.Item[Any], match: re.Match[str]) -> TicketButton:
        parsed = parse_button_id(item.custom_id or "")  # type: ignore[attr-defined]
        if parsed is None:  # the template matched but the action is not one the core knows
            raise ValueError(f"unknown ticket action in {item.custom_id!r}")  # type: ignore[attr-defined]
        return cls(parsed[0], parsed[1])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await run_ticket_action(interaction, self.action, self.ticket_id)


async def run_ticket_action(interaction: discord.Interaction[Any], action: str, ticket_id: int,
                            note: str | None = None) -> None:
    """Ask the core; open the note/resolve modal when its Reply asks for one."""
    veille = veille_of(interaction)
    reply = await answer(interaction, veille.ticket_action(
        Platform.DISCORD, workspace_id(interaction), interaction_actor(interaction), action,
        ticket_id, note=note))
    if reply is not None and reply.open_modal in ("note", "resolve"):
        await interaction.response.send_modal(NoteModal(action, ticket_id,
                                                        interaction.locale.value))


class NoteModal(discord.ui.Modal):
    """The text of a note, or of a resolution; submitted back to the same ticket action."""

    def __init__(self, action: str, ticket_id: int, locale: str) -> None:
        super().__init__(title=t(f"discord.modal.{action}_title", locale, ticket=ticket_id)[:45],
                         custom_id=f"{MODAL_PREFIX}:{action}:{ticket_id}", timeout=900)
        self.action = action
        self.ticket_id = ticket_id
        self.text: discord.ui.TextInput[NoteModal] = discord.ui.TextInput(
            label=t("discord.modal.note_label", locale)[:45], custom_id="note",
            style=discord.TextStyle.paragraph, max_length=1500, required=True)
        self.add_item(self.text)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await run_ticket_action(interaction, self.action, self.ticket_id, note=self.text.value)

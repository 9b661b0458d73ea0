"""Ticket buttons and the one-field modal of the note, resolve and appeal actions.

Buttons are `DynamicItem`s matched on their custom id `veille:<action>:<ticket>`, so a card
posted before a restart still works: nothing about it is kept in memory. The core checks who
pressed (anyone who sees a channel can press its buttons; an author's Appeal arrives from a DM,
with no guild, and the core finds the ticket by its id).
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.core.gateway import MODAL_ACTIONS, button_id, parse_button_id
from bot.core.i18n import t
from bot.core.types import Platform
from bot.platforms.discord.replies import answer, interaction_actor, veille_of, workspace_id

_TEMPLATE = r"veille:(?P<action>[a-z_]+):(?P<ticket>[0-9]+)"
MODAL_PREFIX = "veille-modal"
_LABEL, _DESCRIPTION = 45, 100  # Discord's limits for a modal label's text and description
# Catalogue keys of each modal action's (title, field label); the title formats `ticket`.
MODAL_TEXT = {
    "note": ("discord.modal.note_title", "discord.modal.note_label"),
    "resolve": ("discord.modal.resolve_title", "discord.modal.note_label"),
    "appeal": ("victims.form.appeal_title", "victims.form.appeal_label"),
}


def labelled(text: str, component: discord.ui.Item[Any], description: str = "") -> discord.ui.Label[Any]:
    """A modal field under its label. Discord refuses a label over 45 characters, and some
    translations are longer: the label is then cut at a word and the whole sentence is shown
    as the description, so nothing a person should read is lost."""
    if len(text) > _LABEL:
        cut = text[: _LABEL - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
        description = text if not description else f"{text} — {description}"
        text = cut
    if len(description) > _DESCRIPTION:
        description = description[: _DESCRIPTION - 1] + "…"
    return discord.ui.Label(text=text, component=component, description=description or None)


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
    """Ask the core; open the action's modal (note, resolve, appeal) when its Reply asks for one."""
    veille = veille_of(interaction)
    reply = await answer(interaction, veille.ticket_action(
        Platform.DISCORD, workspace_id(interaction), interaction_actor(interaction), action,
        ticket_id, note=note))
    if reply is not None and reply.open_modal in MODAL_ACTIONS:
        await interaction.response.send_modal(NoteModal(action, ticket_id,
                                                        interaction.locale.value))


class NoteModal(discord.ui.Modal):
    """The text of a note, a resolution or an appeal; submitted back to the same ticket action."""

    def __init__(self, action: str, ticket_id: int, locale: str) -> None:
        title_key, label_key = MODAL_TEXT.get(action, MODAL_TEXT["note"])
        super().__init__(title=t(title_key, locale, ticket=ticket_id)[:45],
                         custom_id=f"{MODAL_PREFIX}:{action}:{ticket_id}", timeout=900)
        self.action = action
        self.ticket_id = ticket_id
        self.text: discord.ui.TextInput[NoteModal] = discord.ui.TextInput(
            custom_id="note", style=discord.TextStyle.paragraph, max_length=1500, required=True)
        self.add_item(labelled(t(label_key, locale), self.text))

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await run_ticket_action(interaction, self.action, self.ticket_id, note=self.text.value)

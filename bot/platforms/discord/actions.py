"""What a ticket button does, and the one-field form of the actions that ask for a note.

Buttons are `render.TicketButton`s matched on their custom id, so a card posted before a
restart still works; a press comes to `run_ticket_action`. The core checks who pressed (anyone
who sees a channel can press its buttons; an author's Appeal arrives from a DM, with no guild,
and the core finds the ticket by its id). Which actions ask for a note, and the strings of
their form, are declared in bot.core.actions.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.core.actions import Form, action_named
from bot.core.i18n import t
from bot.core.types import Platform
from bot.platforms.discord.render import TicketButton
from bot.platforms.discord.replies import (
    answer,
    interaction_actor,
    open_modal,
    veille_of,
    workspace_id,
)

MODAL_PREFIX = "veille-modal"
_LABEL, _DESCRIPTION = 45, 100  # Discord's limits for a modal label's text and description


def labelled(
    text: str, component: discord.ui.Item[Any], description: str = ""
) -> discord.ui.Label[Any]:
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


async def run_ticket_action(
    interaction: discord.Interaction[Any], action: str, ticket_id: int, note: str | None = None
) -> None:
    """Ask the core; open the action's form when its Reply asks for one."""
    veille = veille_of(interaction)
    reply = await answer(
        interaction,
        veille.ticket_action(
            Platform.DISCORD,
            workspace_id(interaction),
            interaction_actor(interaction),
            action,
            ticket_id,
            note=note,
        ),
    )
    if reply is not None and reply.open_modal is not None and form_of(reply.open_modal):
        await open_modal(
            interaction, NoteModal(reply.open_modal, ticket_id, interaction.locale.value)
        )


TicketButton.on_press = run_ticket_action  # render.py builds the buttons; presses come here


def form_of(action: str) -> Form | None:
    """The form `action` asks for before it runs (bot.core.actions), if any."""
    spec = action_named(action)
    return spec.form if spec is not None else None


class NoteModal(discord.ui.Modal):
    """The text an action asks for (a note, a resolution, an appeal); submitted back to the same
    ticket action."""

    def __init__(self, action: str, ticket_id: int, locale: str) -> None:
        form = form_of(action)
        if form is None:
            raise ValueError(f"the ticket action {action!r} asks for no text")
        super().__init__(
            title=t(form.title_key, locale, ticket=ticket_id)[:45],
            custom_id=f"{MODAL_PREFIX}:{action}:{ticket_id}",
            timeout=900,
        )
        self.action = action
        self.ticket_id = ticket_id
        self.text: discord.ui.TextInput[NoteModal] = discord.ui.TextInput(
            custom_id="note", style=discord.TextStyle.paragraph, max_length=1500, required=True
        )
        self.add_item(labelled(t(form.label_key, locale), self.text))

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await run_ticket_action(interaction, self.action, self.ticket_id, note=self.text.value)


async def resume_note(
    interaction: discord.Interaction[Any], custom_id: str, values: dict[str, Any]
) -> bool:
    """A NoteModal submitted after a restart (no live modal holds it): its custom id says the
    action and the ticket, so the action runs as if this process had opened it. False when
    `custom_id` is not a NoteModal's."""
    prefix, _, rest = custom_id.partition(":")
    action, _, ticket = rest.partition(":")
    if prefix != MODAL_PREFIX or not ticket.isdigit() or form_of(action) is None:
        return False
    await run_ticket_action(interaction, action, int(ticket), note=str(values.get("note") or ""))
    return True

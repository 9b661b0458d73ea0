"""Issue 19 on Discord: "Report to Veille", `/protect` and `/ticket handoff`.

Each is one core call (bot.core.service.Veille); the core checks permissions, words every
answer and audits. What lives here is Discord's shape of it: the report form is a modal whose
custom id carries the reported message's channel and message ids (and the reporter); on
submission the message is fetched afresh by those ids, the copy taken when the form opened
being only the fallback for a message deleted meanwhile. (discord.py routes a submission only
to a modal this process opened: a form left open across a restart is lost, as the note
modal's is.) `/protect` reads the photo into memory and hands the bytes to the core only —
never to a file, a log line or Discord — and lets go of them. The author's Appeal is a ticket
action (views.TicketButton, views.NoteModal).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import discord
from discord import app_commands

from bot.core.gateway import Reply
from bot.core.handoff import SERVICES
from bot.core.i18n import t
from bot.core.reports import REASONS
from bot.core.types import MessageEvent, Platform, ReportForm
from bot.platforms.discord.actions import labelled
from bot.platforms.discord.events import to_event
from bot.platforms.discord.replies import (
    answer,
    defer,
    interaction_actor,
    open_modal,
    refuse,
    veille_of,
    workspace_id,
)
from bot.platforms.discord.translator import loc

log = logging.getLogger(__name__)
Interaction = discord.Interaction[Any]
DISCORD = Platform.DISCORD
REPORT_PREFIX = "veille-report"
_MESSAGE = 1900  # under Discord's 2,000 characters a message
MAX_PROTECT_IMAGE = 20 * 1024 * 1024  # as /hashes add


def _service_choice(service: str) -> app_commands.Choice[str]:
    """A handoff service by the core's own name for it (handoff.service.*), FR included."""
    key = f"handoff.service.{service}"
    return app_commands.Choice(
        name=app_commands.locale_str(t(key, "en")[:100], key=key), value=service
    )


class ReportModal(discord.ui.Modal):
    """The report form, in the reporter's language: what it is (one of the core's reasons),
    how to reach them, details, and the good-faith statement (the core refuses without it)."""

    def __init__(
        self, message: discord.Message, event: MessageEvent, reporter_id: int, locale: str
    ) -> None:
        super().__init__(
            title=t("victims.form.title", locale)[:45],
            timeout=900,
            custom_id=report_id(message.channel.id, message.id, reporter_id),
        )
        self.event = event  # what the reporter saw, if the message is gone by the submission
        self.reason: discord.ui.Select[ReportModal] = discord.ui.Select(
            custom_id="reason",
            min_values=1,
            max_values=1,
            required=True,
            options=[
                discord.SelectOption(label=t(f"victims.reason.{r}", locale)[:100], value=r)
                for r in REASONS
            ],
        )
        self.contact: discord.ui.TextInput[ReportModal] = discord.ui.TextInput(
            custom_id="contact", required=False, max_length=200
        )
        self.details: discord.ui.TextInput[ReportModal] = discord.ui.TextInput(
            custom_id="details", style=discord.TextStyle.paragraph, required=False, max_length=1500
        )
        self.good_faith: discord.ui.Checkbox[ReportModal] = discord.ui.Checkbox(
            custom_id="good_faith"
        )
        self.add_item(labelled(t("victims.form.reason", locale), self.reason))
        self.add_item(
            labelled(
                t("victims.form.contact", locale),
                self.contact,
                t("victims.form.contact_hint", locale),
            )
        )
        self.add_item(labelled(t("victims.form.details", locale), self.details))
        self.add_item(
            labelled(
                t("victims.form.good_faith", locale),
                self.good_faith,
                t("victims.form.good_faith_option", locale),
            )
        )

    async def on_submit(self, interaction: Interaction) -> None:
        form = ReportForm(
            reason=(self.reason.values or [""])[0],
            good_faith=bool(self.good_faith.value),
            contact=self.contact.value.strip(),
            details=self.details.value.strip(),
        )
        await _submit_report(interaction, self.custom_id, form, self.event)


async def _submit_report(
    interaction: Interaction, custom_id: str, form: ReportForm, seen: MessageEvent | None
) -> None:
    """File the report on the message the form's custom id names, as it is now (or as the
    reporter `seen` it, when it is gone by the submission)."""
    parsed = parse_report_id(custom_id)
    await defer(interaction)  # fetching the message and opening the ticket may take a while
    event = await _fetch_event(interaction, parsed[0], parsed[1]) if parsed else None
    event = event or seen
    if event is None:  # a form from before a restart, about a message that is gone since
        await refuse(interaction, t("victims.form.expired", interaction.locale.value))
        return
    await answer(
        interaction,
        veille_of(interaction).report_message(
            DISCORD, workspace_id(interaction), interaction_actor(interaction), event, form
        ),
    )


async def resume_report(interaction: Interaction, custom_id: str, values: dict[str, Any]) -> bool:
    """A report form submitted after a restart (no live modal holds it): filed from its custom
    id (the channel, the message and the reporter) and its values. False when `custom_id` is
    not a report form's, or names another reporter."""
    if parse_report_id(custom_id) is None:
        return False
    if not custom_id.endswith(f":{interaction.user.id}"):
        return False
    reason = values.get("reason") or [""]
    form = ReportForm(
        reason=str(reason[0] if isinstance(reason, list) and reason else reason),
        good_faith=bool(values.get("good_faith")),
        contact=str(values.get("contact") or "").strip(),
        details=str(values.get("details") or "").strip(),
    )
    await _submit_report(interaction, custom_id, form, None)
    return True


def report_id(channel_id: int, message_id: int, reporter_id: int) -> str:
    """The report modal's custom id. discord.py keys open modals by custom id alone, so the
    reporter is part of it: two people reporting one message each keep their own form."""
    return f"{REPORT_PREFIX}:{channel_id}:{message_id}:{reporter_id}"


def parse_report_id(custom_id: str) -> tuple[int, int] | None:
    """(channel id, message id) of a report modal's custom id; None for anything else."""
    parts = custom_id.split(":")
    if len(parts) != 4 or parts[0] != REPORT_PREFIX or not all(x.isdigit() for x in parts[1:]):
        return None
    return int(parts[1]), int(parts[2])


async def _fetch_event(
    interaction: Interaction, channel_id: int, message_id: int
) -> MessageEvent | None:
    """The reported message as it is now (edits included); None when it is gone or unreadable:
    a deleted message is still worth reporting, from what the reporter saw."""
    client = interaction.client
    channel = client.get_partial_messageable(channel_id, guild_id=interaction.guild_id)
    try:
        message = await channel.fetch_message(message_id)
    except (discord.NotFound, discord.Forbidden):
        return None
    except discord.HTTPException as exc:
        log.warning("report: could not fetch message %s: %s", message_id, exc.status)
        return None
    return to_event(message, client.options.ai_apps)  # type: ignore[attr-defined]


def register_victims(tree: app_commands.CommandTree[Any], ticket: app_commands.Group) -> None:
    """Add "Report to Veille" and `/protect` to `tree`, `handoff` to the `/ticket` group."""

    @app_commands.context_menu(name=loc("Report to Veille", "cmd.report_message.name"))
    @app_commands.guild_only()
    async def report_message(interaction: Interaction, message: discord.Message) -> None:
        client = interaction.client
        event = to_event(message, client.options.ai_apps)  # type: ignore[attr-defined]
        await open_modal(
            interaction, ReportModal(message, event, interaction.user.id, interaction.locale.value)
        )

    @app_commands.command(
        name=loc("protect", "cmd.protect.name"),
        description=loc(
            "Protect a photo of you: Veille keeps only its fingerprints, never the photo",
            "cmd.protect.description",
        ),
    )
    @app_commands.guild_only()
    @app_commands.describe(
        image=loc("A photo of you to protect (read in memory, then dropped)", "cmd.protect.image"),
        label=loc("A name for it, only you see it", "cmd.protect.label"),
        withdraw=loc("The number of a protection to withdraw", "cmd.protect.withdraw"),
    )
    async def protect(
        interaction: Interaction,
        image: discord.Attachment | None = None,
        label: str | None = None,
        withdraw: app_commands.Range[int, 1] | None = None,
    ) -> None:
        await _protect(interaction, image, label or "", withdraw)

    @ticket.command(
        name=loc("handoff", "cmd.ticket.handoff.name"),
        description=loc(
            "A summary to paste into a reporting service's own form (admins)",
            "cmd.ticket.handoff.description",
        ),
    )
    @app_commands.describe(
        ticket_id=loc("Ticket number", "cmd.ticket.id"),
        service=loc("The service", "cmd.ticket.handoff.service"),
    )
    @app_commands.choices(service=[_service_choice(s) for s in SERVICES])
    async def handoff(interaction: Interaction, ticket_id: int, service: str) -> None:
        await _handoff(interaction, ticket_id, service)

    tree.add_command(report_message)
    tree.add_command(protect)


async def _handoff(interaction: Interaction, ticket_id: int, service: str) -> None:
    """A handoff summary is longer than Discord's 2,000 characters a message: it comes as
    several private messages, cut at line ends so each pastes whole."""
    await defer(interaction)
    more: list[str] = []

    async def first_piece() -> Reply:
        reply = await veille_of(interaction).handoff(
            DISCORD, workspace_id(interaction), interaction_actor(interaction), ticket_id, service
        )
        pieces = _pieces(reply.text or "", _MESSAGE)
        more.extend(pieces[1:])
        return replace(reply, text=pieces[0]) if pieces else reply

    if await answer(interaction, first_piece()) is not None:
        for piece in more:
            await interaction.followup.send(content=piece, ephemeral=True)


def _pieces(text: str, limit: int) -> list[str]:
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        if current and len(current) + len(line) > limit:
            pieces.append(current)
            current = ""
        while len(line) > limit:  # one line longer than a message: cut it
            pieces.append(line[:limit])
            line = line[limit:]
        current += line
    return [piece for piece in [*pieces, current] if piece.strip()]


async def _protect(
    interaction: Interaction, image: discord.Attachment | None, label: str, withdraw: int | None
) -> None:
    """One of: protect the photo, withdraw a protection, or list one's protections."""
    veille, locale = veille_of(interaction), interaction.locale.value
    where, actor = workspace_id(interaction), interaction_actor(interaction)
    if image is not None and withdraw is not None:
        await refuse(interaction, t("discord.protect.one_at_a_time", locale))
        return
    if image is None:
        await defer(interaction)
        if withdraw is not None:
            await answer(interaction, veille.withdraw_protection(DISCORD, where, actor, withdraw))
        else:
            await answer(interaction, veille.protections(DISCORD, where, actor))
        return
    if image.size > MAX_PROTECT_IMAGE:
        await refuse(
            interaction,
            t(
                "discord.protect.too_big",
                locale,
                name=image.filename,
                size=round(image.size / 1024 / 1024, 1),
                limit=MAX_PROTECT_IMAGE // 1024 // 1024,
            ),
        )
        return
    await defer(interaction)
    data = await image.read()  # in memory only; the core keeps nothing but hashes
    try:
        await answer(interaction, veille.protect(DISCORD, where, actor, data, label))
    finally:
        del data  # nothing here outlives the call

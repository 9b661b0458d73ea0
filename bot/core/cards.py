"""Rendering: tickets, lists, status and help as neutral Cards and Replies, in the workspace's
language, with the buttons that make sense for the ticket's state. Adapters only map them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import actions
from bot.core.clock import as_utc
from bot.core.gateway import Button, Card, Reply
from bot.core.help import reporting_guidance
from bot.core.i18n import t
from bot.core.markup import inert
from bot.core.quarantine import evidence_of
from bot.core.reasons import category_name, readable_reason
from bot.core.verdict import Severity
from bot.store import victims_repo
from bot.store.models import Appeal, Evidence, Report, Ticket, Workspace
from detectors.base import MINOR_PRESENT, SEXUAL, SEXUALISED_EDIT


def buttons_for(ticket: Ticket, has_original: bool) -> tuple[str, ...]:
    """Ticket actions offered on the card: by kind and status (bot.core.actions); no reveal
    without kept bytes (CRITICAL)."""
    return tuple(
        action.name for action in actions.buttons_for(ticket.kind, ticket.status, has_original)
    )


def age_hours(ticket: Ticket, now: datetime) -> float:
    return (as_utc(now) - as_utc(ticket.created_at)).total_seconds() / 3600


def overdue(ticket: Ticket, sla_hours: int, now: datetime) -> bool:
    """Unresolved past the workspace's SLA."""
    return ticket.status != "resolved" and age_hours(ticket, now) > sla_hours


def ticket_card(
    ticket: Ticket,
    workspace: Workspace,
    now: datetime,
    *,
    has_original: bool = False,
    reports: Sequence[Report] = (),
    appeal: Appeal | None = None,
) -> Card:
    """The ticket card kept up to date in the safety channel."""
    lang = workspace.locale
    assert ticket.id is not None

    def quoted(text: str) -> str:  # what people wrote (and platform ids): shown, never live
        return inert(text, workspace.platform)

    severity = Severity.parse(ticket.severity)
    kind = t(f"core.kind.{ticket.kind}", lang)
    title = t(
        "core.card.title",
        lang,
        id=ticket.id,
        kind=kind,
        severity=t(f"core.severity.{severity.name}", lang),
    )
    hours = age_hours(ticket, now)
    fields: list[tuple[str, str]] = [
        (t("core.card.status", lang), t(f"core.status.{ticket.status}", lang)),
        (t("core.card.channel", lang), quoted(ticket.channel_id)),
        (t("core.card.author", lang), quoted(ticket.author_id or "-")),
        (
            t("core.card.age", lang),
            t("core.card.age_value", lang, hours=f"{hours:.1f}", sla=workspace.sla_hours),
        ),
    ]
    mentions: list[tuple[int, str, str]] = [(1, "channel", ticket.channel_id)]
    if ticket.author_id:
        mentions.append((2, "user", ticket.author_id))
    if ticket.categories:
        fields.append(
            (
                t("core.card.categories", lang),
                ", ".join(category_name(c, lang) for c in ticket.categories),
            )
        )
    if ticket.scores:
        top = sorted(ticket.scores.items(), key=lambda kv: -kv[1])[:4]
        fields.append(
            (
                t("core.card.scores", lang),
                ", ".join(f"{category_name(k, lang)} {v:.2f}" for k, v in top),
            )
        )
    if ticket.assignee_id:
        mentions.append((len(fields), "user", ticket.assignee_id))
        fields.append((t("core.card.assignee", lang), quoted(ticket.assignee_id)))
    if ticket.resolution:
        fields.append(
            (t("core.card.resolution", lang), t(f"core.resolution.{ticket.resolution}", lang))
        )
    victims_fields(ticket, lang, now, reports, appeal, fields, mentions, workspace.platform)
    body_lines = [f"• {quoted(readable_reason(reason, lang))}" for reason in ticket.reasons[:6]]
    if ticket.message_removed:
        body_lines.append(t("core.card.removed", lang))
    if severity == Severity.CRITICAL:
        body_lines.append(reporting_guidance(lang))
    elif (
        severity == Severity.QUARANTINE
        and MINOR_PRESENT in ticket.categories
        and ({SEXUAL, SEXUALISED_EDIT} & set(ticket.categories))
    ):  # fusion's minor_suspected, read back from the stored categories
        body_lines.append(t("core.card.minor_withheld", lang))
    if overdue(ticket, workspace.sla_hours, now) and ticket.due_at is None:
        body_lines.append(t("core.card.overdue", lang, sla=workspace.sla_hours))
    if ticket.kind == "copy":
        body_lines.append(t("victims.card.copy_of", lang))
    buttons = tuple(
        Button(action.name, t(action.label_key, lang), ticket.id, action.style)
        for action in actions.buttons_for(ticket.kind, ticket.status, has_original)
    )
    return Card(
        title=title,
        body="\n".join(body_lines),
        fields=tuple(fields),
        severity=severity,
        footer=t("core.card.footer", lang, id=ticket.id),
        buttons=buttons,
        fallback_text=title,
        mentions=tuple(mentions),
    )


def preview_card(ticket: Ticket, workspace: Workspace, preview_png: bytes | None) -> Card:
    """The blurred greyscale preview posted in the quarantine channel."""
    assert ticket.id is not None
    title = t("core.preview.title", workspace.locale, id=ticket.id)
    return Card(
        title=title,
        body=t("core.preview.body", workspace.locale),
        severity=Severity.parse(ticket.severity),
        image_png=preview_png,
        image_name=f"veille-{ticket.id}.png",
        spoiler=True,
        fallback_text=title,
    )


async def card_for(session: AsyncSession, ticket: Ticket, purpose: str, now: datetime) -> Card:
    """The card an outbox action posts or updates, rendered from the ticket's state now."""
    workspace = await session.get(Workspace, ticket.workspace_id)
    assert workspace is not None and ticket.id is not None
    evidence: Evidence | None = await evidence_of(session, ticket.id)
    if purpose == "preview":
        return preview_card(ticket, workspace, evidence.preview_png if evidence else None)
    has_original = evidence is not None and evidence.ciphertext is not None
    reports = await victims_repo.reports_of(session, ticket.id) if ticket.kind == "report" else []
    appeal = await victims_repo.appeal_of(session, ticket.id)
    return ticket_card(
        ticket, workspace, now, has_original=has_original, reports=reports, appeal=appeal
    )


def victims_fields(
    ticket: Ticket,
    lang: str,
    now: datetime,
    reports: Sequence[Report],
    appeal: Appeal | None,
    fields: list[tuple[str, str]],
    mentions: list[tuple[int, str, str]],
    platform: str,
) -> None:
    """A report ticket's due time and reporters, an appeal, what a sweep found (in place)."""
    if ticket.due_at is not None and ticket.status != "resolved":
        left = (as_utc(ticket.due_at) - as_utc(now)).total_seconds() / 3600
        fields.append(
            (
                t("victims.card.due", lang),
                t("victims.card.due_in", lang, hours=f"{left:.1f}")
                if left >= 0
                else t("victims.card.due_over", lang, hours=f"{-left:.1f}"),
            )
        )
    for report in reports[:3]:  # who reported is for moderators only, never for the author
        mentions.append((len(fields), "user", report.reporter_id))
        label = t(f"victims.reason.{report.reason}", lang)
        if report.contact:
            label += t("victims.report.contact_given", lang)
        fields.append((label, report.reporter_id))
    if len(reports) > 3:
        fields.append((t("victims.card.reports", lang), str(len(reports))))
    if appeal is not None:
        decided = appeal.decided_by
        fields.append(
            (
                t("victims.card.appeal", lang),
                t(
                    "victims.card.appeal_value",
                    lang,
                    status=t(f"victims.card.appeal_{appeal.status}", lang),
                    decided=t("victims.notice.by_detectors", lang)
                    if decided == "veille"
                    else decided,
                    statement=inert(appeal.statement[:300], platform),
                ),
            )
        )
    if ticket.sweep:
        sweep = ticket.sweep
        fields.append(
            (
                t("victims.card.sweep", lang),
                t(
                    "victims.card.sweep_value",
                    lang,
                    found=sweep.get("found", 0),
                    removed=sweep.get("removed", 0),
                    tickets=", ".join(f"#{i}" for i in sweep.get("tickets", [])) or "-",
                ),
            )
        )


def ticket_list(
    tickets: Sequence[Ticket], workspace: Workspace, now: datetime, status: str
) -> Reply:
    lang = workspace.locale
    if not tickets:
        return Reply(text=t("core.list.empty", lang, status=status))
    lines = []
    for ticket in tickets:
        mark = " ⚠" if overdue(ticket, workspace.sla_hours, now) and ticket.due_at is None else ""
        if ticket.due_at is not None and ticket.status != "resolved":
            left = (as_utc(ticket.due_at) - as_utc(now)).total_seconds() / 3600
            mark += (
                t("victims.card.list_due", lang, hours=f"{left:.0f}")
                if left >= 0
                else t("victims.card.list_overdue", lang, hours=f"{-left:.0f}")
            )
        star = "★ " if ticket.priority else ""
        lines.append(
            t(
                "core.list.line",
                lang,
                star=star,
                id=ticket.id,
                severity=t(f"core.severity.{ticket.severity}", lang),
                status=t(f"core.status.{ticket.status}", lang),
                hours=f"{age_hours(ticket, now):.0f}",
                overdue=mark,
            )
        )
    card = Card(
        title=t("core.list.title", lang, count=len(tickets)),
        body="\n".join(lines),
        fallback_text=t("core.list.title", lang, count=len(tickets)),
    )
    return Reply(card=card, extras={"ticket_ids": [tk.id for tk in tickets]})


def status_card(workspace: Workspace, counts: dict[str, int], detectors: str, workers: str) -> Card:
    lang = workspace.locale
    unresolved = sum(n for status, n in counts.items() if status != "resolved")
    mentions = tuple(
        (index, "channel", channel)
        for index, channel in (
            (3, workspace.safety_channel_id),
            (4, workspace.quarantine_channel_id),
        )
        if channel
    )
    fields = (
        (t("core.status_card.open", lang), str(unresolved)),
        (t("core.status_card.resolved", lang), str(counts.get("resolved", 0))),
        (t("core.status_card.sensitivity", lang), workspace.sensitivity),
        (t("core.status_card.safety_channel", lang), workspace.safety_channel_id or "-"),
        (t("core.status_card.quarantine_channel", lang), workspace.quarantine_channel_id or "-"),
        (t("core.status_card.detectors", lang), detectors or "-"),
        (t("core.status_card.outbox", lang), workers),
    )
    title = t("core.status_card.title", lang)
    body = "" if workspace.setup_completed else t("core.status_card.not_setup", lang)
    return Card(title=title, body=body, fields=fields, fallback_text=title, mentions=mentions)


def help_card(locale: str) -> Card:
    title = t("core.usage.title", locale)
    return Card(title=title, body=t("core.usage.body", locale), fallback_text=title)

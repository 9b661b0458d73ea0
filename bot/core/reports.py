"""Reports with a 48-hour clock (US TAKE IT DOWN Act: a reported intimate image and its known
copies come down within 48 hours of a valid report).

Anyone may report a message ("Report to Veille"). The first report of a message opens a
priority ticket of kind `report`, due 48 hours later; more reports of the same message join
it. The reporter is shown to moderators, never to the reported author; they are told privately
that the report was received and again when it is resolved. At 36 hours unresolved the safety
channel is alerted once. The caller owns the transaction and checks roles.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import outbox
from bot.core.audit import audit
from bot.core.clock import as_utc
from bot.core.errors import VeilleError
from bot.core.help import help_guidance
from bot.core.i18n import normalise_locale, t
from bot.core.pipeline import Scan
from bot.core.types import Actor, ReportForm
from bot.core.verdict import Severity
from bot.store import repos, victims_repo
from bot.store.models import Report, Ticket, Workspace

REASONS = ("intimate_me", "fake_me", "someone_i_know", "minor", "other")
ABOUT_SELF = ("intimate_me", "fake_me")  # the reporter is the person harmed: supportive guidance
DUE = timedelta(hours=48)
ALERT_AT = timedelta(hours=36)  # the safety channel is alerted when this old and unresolved
MAX_PER_DAY = 30  # reports one person may file in a workspace per day (a flood is refused)
MEDIA_KEY = "report"  # one report ticket per message, beside any detection tickets


def reporter_locale(actor: Actor, ws: Workspace) -> str:
    return normalise_locale(actor.locale) if actor.locale else ws.locale


def validate(form: ReportForm, lang: str) -> None:
    if form.reason not in REASONS:
        raise VeilleError(
            t("victims.report.invalid_reason", lang, reasons=", ".join(REASONS)),
            code="invalid_reason",
        )
    if not form.good_faith:
        raise VeilleError(t("victims.report.good_faith_needed", lang), code="good_faith")


def hours_left(ticket: Ticket, now: datetime) -> float | None:
    """Hours until the report ticket is due (negative: overdue); None without a due time."""
    if ticket.due_at is None:
        return None
    return (as_utc(ticket.due_at) - as_utc(now)).total_seconds() / 3600


async def file_report(
    session: AsyncSession,
    ws: Workspace,
    scan: Scan,
    form: ReportForm,
    actor: Actor,
    now: datetime,
) -> tuple[Ticket, str]:
    """Open or join the message's report ticket; returns it and the reporter's private
    acknowledgement (in their language)."""
    assert ws.id is not None
    lang = reporter_locale(actor, ws)
    validate(form, lang)
    if (
        await victims_repo.reports_since(session, ws.id, actor.user_id, now - timedelta(days=1))
        >= MAX_PER_DAY
    ):
        raise VeilleError(t("victims.report.too_many", lang), code="too_many_reports")
    event = scan.event
    scanned = [m for m in scan.media if m.verdict is not None and m.sha256]
    worst = max(
        scanned,
        key=lambda m: (m.verdict.severity, max(m.verdict.scores.values(), default=0)),  # type: ignore[union-attr]
        default=None,
    )
    media = worst or next((m for m in scan.media if m.sha256), None)
    verdict = worst.verdict if worst is not None else scan.text
    item = (
        await repos.media_item(session, media.sha256)
        if media is not None and media.sha256
        else None
    )
    row = Ticket(
        workspace_id=ws.id,
        kind="report",
        channel_id=event.channel_id,
        message_id=event.message_id,
        thread_id=event.thread_id,
        media_key=MEDIA_KEY,
        author_id=event.author.user_id,
        sha256=media.sha256 if media else None,
        media_item_id=item.id if item else None,
        severity=Severity.REVIEW.name,
        priority=True,
        categories=list(verdict.categories) if verdict else [],
        scores={k: round(float(v), 4) for k, v in verdict.scores.items()} if verdict else {},
        reasons=[f"reported: {form.reason}"],
        created_at=now,
        updated_at=now,
        due_at=now + DUE,
    )
    ticket, is_new = await repos.open_ticket(session, row)
    assert ticket.id is not None
    if await victims_repo.report_by(session, ticket.id, actor.user_id) is not None:
        return ticket, t("victims.report.already", lang, id=ticket.id)
    if ticket.status == "resolved":  # reported again after a decision: a human looks again
        ticket.status, ticket.resolved_at, ticket.due_at = "open", None, now + DUE
        ticket.due_alerted_at = None
    reason_tag = f"reported: {form.reason}"
    if reason_tag not in ticket.reasons:
        ticket.reasons = [*ticket.reasons, reason_tag][:10]
    report = Report(
        ticket_id=ticket.id,
        workspace_id=ws.id,
        reporter_id=actor.user_id,
        reporter_name=(actor.display_name or "")[:200],
        reason=form.reason,
        contact=form.contact.strip()[:500] or None,
        details=form.details.strip()[:2000] or None,
        good_faith=True,
        locale=lang,
        created_at=now,
        due_at=now + DUE,
    )
    session.add(report)
    await session.flush()
    event_row = audit(
        session,
        workspace_id=ws.id,
        ticket_id=ticket.id,
        actor=actor,
        action="reported",
        at=now,
        data={"report": report.id, "reason": form.reason, "new": is_new, "images": len(scanned)},
    )
    if ws.safety_channel_id:
        await outbox.post_ticket_card(session, ws, ticket.id, now)
        if not is_new:
            await outbox.refresh_card(session, ws, ticket, event_row, now)
        if form.reason == "minor":
            await outbox.post_text(
                session,
                ws,
                ws.safety_channel_id,
                t(
                    "victims.report.minor_alert",
                    ws.locale,
                    id=ticket.id,
                    admins=" ".join(ws.admin_role_ids or []),
                ),
                key=f"{ticket.id}:report_minor:{report.id}",
                ticket_id=ticket.id,
                now=now,
            )
    text = t("victims.report.received", lang, id=ticket.id, hours=int(DUE.total_seconds() // 3600))
    if form.reason in ABOUT_SELF:
        text = f"{text}\n\n{help_guidance(lang)}"
    return ticket, text


async def alert_due(
    session: AsyncSession, now: datetime, queue_at: datetime | None = None
) -> list[int]:
    """Alert each safety channel once about report tickets unresolved for 36 hours at `now`;
    the alerts are queued to go at `queue_at` (default `now`)."""
    alerted = []
    for ticket in await victims_repo.reports_nearing_due(session, now + (DUE - ALERT_AT)):
        ws = await session.get(Workspace, ticket.workspace_id)
        ticket.due_alerted_at = now
        if ws is None or not ws.safety_channel_id or ticket.id is None:
            continue
        left = hours_left(ticket, now) or 0.0
        await outbox.post_text(
            session,
            ws,
            ws.safety_channel_id,
            t("victims.report.due_alert", ws.locale, id=ticket.id, hours=f"{max(left, 0):.0f}"),
            key=f"{ticket.id}:due_alert:{ticket.due_at}",
            ticket_id=ticket.id,
            now=queue_at or now,
        )
        event = audit(
            session,
            workspace_id=ws.id,
            ticket_id=ticket.id,
            actor=None,
            action="due_alert",
            at=now,
            data={"hours_left": round(left, 1)},
        )
        await outbox.refresh_card(session, ws, ticket, event, queue_at or now)
        alerted.append(ticket.id)
    return alerted


async def tell_reporters(
    session: AsyncSession, ws: Workspace, ticket: Ticket, event_id: int | None, now: datetime
) -> int:
    """Each reporter is told privately that their report was resolved, and how."""
    assert ticket.id is not None
    outcome = (
        ticket.resolution if ticket.resolution in ("confirmed", "false_positive") else "resolved"
    )
    told = 0
    for report in await victims_repo.reports_of(session, ticket.id):
        if await outbox.send_private(
            session,
            ws,
            report.reporter_id,
            t(f"victims.report.done.{outcome}", report.locale, id=ticket.id),
            key=f"{ticket.id}:reporter:{report.id}:{event_id}",
            ticket_id=ticket.id,
            now=now,
        ):
            report.resolved_notified_at = now
            told += 1
    return told

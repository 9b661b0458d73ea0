"""Handoff summaries: one ticket's facts laid out as each service's own public report form asks
for them (PHAROS, 3018, NCMEC's CyberTipline, StopNCII), for a moderator to paste there.

Veille never sends a report itself: the person who files it must read it, may add what only
they know, and is the one the service answers. So this module only reads the store and
returns plain text. It never touches image bytes or evidence ciphertext (hashes and metadata
only), and it never copies a reporter's identity or contact details: the services get those
from the moderator, on request and with the reporter's consent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.core.clock import as_utc
from bot.core.digest.format import severity_label
from bot.core.errors import NotFound, VeilleError
from bot.core.i18n import plural, t
from bot.core.reasons import readable_reason
from bot.store.models import Evidence, HashEntry, MediaItem, Report, Ticket, TicketEvent, Workspace

SERVICES = ("pharos", "3018", "ncmec", "stopncii")
# The services' own public pages, where the moderator files the report.
SERVICE_URLS = {
    "pharos": "https://www.internet-signalement.gouv.fr",
    "3018": "https://e-enfance.org/numero-3018/",
    "ncmec": "https://report.cybertip.org",
    "stopncii": "https://stopncii.org",
}
AUDIT_LINES = 25  # the most recent steps; the export has the whole trail
NOTE_CHARS = 300
MINOR_SIGNS = ("minor_present", "minor")  # a category, or a report reason


def _when(value: datetime | None, locale: str) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC") if value else t("handoff.none", locale)


def _label(prefix: str, value: str, locale: str) -> str:
    """A catalogue label, or the value itself when the catalogue has none (a new category)."""
    key = f"{prefix}.{value}"
    found = t(key, locale)
    return value if found == key else found


class _Case:
    """Everything a summary may say about one ticket, read once."""

    def __init__(
        self,
        ticket: Ticket,
        workspace: Workspace,
        media: MediaItem | None,
        evidence: Evidence | None,
        md5: str | None,
        reports: list[Report],
        events: list[TicketEvent],
    ) -> None:
        self.ticket, self.workspace, self.media, self.evidence = ticket, workspace, media, evidence
        self.md5, self.reports, self.events = md5, reports, events

    @property
    def minor(self) -> bool:
        signs = set(self.ticket.categories) | {report.reason for report in self.reports}
        return any(sign in signs for sign in MINOR_SIGNS)

    @property
    def pdq(self) -> str | None:
        return self.media.pdq if self.media else None


async def _load(
    session: AsyncSession, ticket_id: int, locale: str, workspace_id: int | None
) -> _Case:
    ticket = await session.get(Ticket, ticket_id)
    if ticket is not None and workspace_id is not None and ticket.workspace_id != workspace_id:
        ticket = None  # another community's ticket does not exist for this one
    workspace = None if ticket is None else await session.get(Workspace, ticket.workspace_id)
    if ticket is None or workspace is None:
        raise NotFound(t("handoff.not_found", locale, id=ticket_id))
    media = await session.get(MediaItem, ticket.media_item_id) if ticket.media_item_id else None
    evidence = (
        (await session.execute(select(Evidence).where(Evidence.ticket_id == ticket_id)))
        .scalars()
        .first()
    )
    md5 = (
        (
            await session.execute(
                select(HashEntry.value).where(
                    HashEntry.ticket_id == ticket_id, HashEntry.kind == "md5"
                )
            )
        )
        .scalars()
        .first()
    )
    reports = list(
        (
            await session.execute(
                select(Report).where(Report.ticket_id == ticket_id).order_by(col(Report.created_at))
            )
        ).scalars()
    )
    events = list(
        (
            await session.execute(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket_id)
                .order_by(col(TicketEvent.at), col(TicketEvent.id))
            )
        ).scalars()
    )
    return _Case(ticket, workspace, media, evidence, md5, reports, events)


def _platform(case: _Case) -> str:
    return case.workspace.platform.capitalize()


DISCORD_LINK = "https://discord.com/channels/{guild}/{channel}/{message}"


def _location(case: _Case, locale: str = "en") -> str:
    """Where the content was: a Discord message link, or Slack's workspace/channel/message."""
    tk, ws = case.ticket, case.workspace
    if ws.platform == "discord":
        return DISCORD_LINK.format(
            guild=ws.external_id, channel=tk.channel_id, message=tk.message_id
        )
    return t(
        "handoff.value.slack_location",
        locale,
        team=ws.external_id,
        channel=tk.channel_id,
        message=tk.message_id,
    )


def _categories(case: _Case, locale: str) -> str:
    names = [_label("digest.category", c, locale) for c in case.ticket.categories]
    return ", ".join(names) or t("handoff.none", locale)


def _reasons(case: _Case, locale: str) -> str:
    return "; ".join(readable_reason(r, locale) for r in case.ticket.reasons) or t(
        "handoff.none", locale
    )


def _description(case: _Case, locale: str) -> str:
    text = t(
        "handoff.value.description",
        locale,
        platform=_platform(case),
        workspace=case.workspace.name or case.workspace.external_id,
        severity=severity_label(case.ticket.severity, locale),
        categories=_categories(case, locale),
    )
    if case.reports:
        reasons = ", ".join(
            dict.fromkeys(_label("victims.reason", r.reason, locale) for r in case.reports)
        )
        text += " " + plural(
            "handoff.value.description_reports", len(case.reports), locale, reasons=reasons
        )
    return text


def _status(case: _Case, locale: str) -> str:
    tk = case.ticket
    if tk.resolved_at is None:
        return t("handoff.value.open", locale)
    resolution = _label("handoff.resolution", tk.resolution or tk.status, locale)
    return t("handoff.value.resolved", locale, resolution=resolution)


def _evidence(case: _Case, locale: str) -> str:
    ev = case.evidence
    if ev is None:
        return t("handoff.value.no_evidence", locale)
    if ev.purged_at is not None:
        return t("handoff.value.evidence_purged", locale, at=_when(ev.purged_at, locale))
    if ev.ciphertext is None:
        return t("handoff.value.evidence_hashes", locale)
    return t("handoff.value.evidence_kept", locale, until=_when(ev.purge_after, locale))


def _due(case: _Case, report: Report, locale: str, now: datetime) -> str:
    """The due time, with the hours left (or past) while the ticket is unresolved."""
    due = as_utc(report.due_at)
    text = _when(due, locale)
    if case.ticket.resolved_at is None:
        hours = round((due - as_utc(now)).total_seconds() / 3600)
        key = "due_left" if hours >= 0 else "due_over"
        text += f" ({t(f'handoff.value.{key}', locale, hours=abs(hours))})"
    return text


def _lines(pairs: list[tuple[str, str]], locale: str) -> list[str]:
    return [
        t("handoff.field_line", locale, label=t(f"handoff.field.{key}", locale), value=value)
        for key, value in pairs
    ]


def _hashes(case: _Case, locale: str, md5: bool) -> list[str]:
    unknown = t("handoff.unknown", locale)
    pairs = [("sha256", case.ticket.sha256 or unknown)]
    if md5:
        pairs.append(("md5", case.md5 or unknown))
    pairs.append(("pdq", case.pdq or unknown))
    return [t("handoff.section_hashes", locale), *_lines(pairs, locale)]


def _reports(case: _Case, locale: str, now: datetime) -> list[str]:
    lines = [t("handoff.section_reports", locale)]
    if not case.reports:
        return [*lines, t("handoff.no_reports", locale)]
    yes_no = {True: t("handoff.yes", locale), False: t("handoff.no", locale)}
    for report in case.reports:
        lines.append(
            "- "
            + t(
                "handoff.report_line",
                locale,
                at=_when(report.created_at, locale),
                reason=_label("victims.reason", report.reason, locale),
                due=_due(case, report, locale, now),
                good_faith=yes_no[report.good_faith],
            )
        )
    return lines


def _audit(case: _Case, locale: str) -> list[str]:
    lines = [t("handoff.section_audit", locale)]
    shown = case.events[-AUDIT_LINES:]
    if len(case.events) > len(shown):
        lines.append(
            t(
                "handoff.audit_more",
                locale,
                count=len(case.events) - len(shown),
                workspace=case.workspace.id,
            )
        )
    # A reporter's steps are kept, not who they are nor what they wrote (their contact,
    # perhaps): the moderator passes those on, with the reporter's consent.
    reporters = {report.reporter_id for report in case.reports}
    for event in shown:
        reporter = event.actor_id in reporters
        actor = t("handoff.reporter", locale) if reporter else event.actor_name or event.actor_id
        line = t(
            "handoff.audit_line",
            locale,
            at=_when(event.at, locale),
            actor=actor,
            action=event.action,
        )
        if event.note and not reporter:
            note = " ".join(event.note.split())
            line += f" — {note[:NOTE_CHARS]}{'…' if len(note) > NOTE_CHARS else ''}"
        lines.append("- " + line)
    return lines


def _case_fields(case: _Case, locale: str) -> list[tuple[str, str]]:
    tk = case.ticket
    return [
        ("ticket", f"#{tk.id}"),
        ("platform", _platform(case)),
        ("workspace", f"{case.workspace.name} ({case.workspace.external_id})"),
        ("channel", tk.channel_id),
        ("message", tk.message_id),
        ("severity", severity_label(tk.severity, locale)),
        ("status", _status(case, locale)),
        ("resolved", _when(tk.resolved_at, locale)),
        ("removed", t("handoff.yes" if tk.message_removed else "handoff.no", locale)),
        ("evidence", _evidence(case, locale)),
    ]


def _pharos(case: _Case, locale: str, now: datetime) -> list[str]:
    tk = case.ticket
    content = _lines(
        [
            ("location", _location(case, locale)),
            ("content_type", _categories(case, locale)),
            ("date_seen", _when(tk.created_at, locale)),
            ("description", _description(case, locale)),
            ("author", tk.author_id or t("handoff.unknown", locale)),
            ("reasons", _reasons(case, locale)),
            ("contact", t("handoff.on_request", locale)),
        ],
        locale,
    )
    return [*content, "", *_hashes(case, locale, md5=False), "", *_reports(case, locale, now)]


def _e_enfance(case: _Case, locale: str, now: datetime) -> list[str]:
    tk = case.ticket
    age = "minor_age" if case.minor else "adult_age"
    content = _lines(
        [
            ("platform", _platform(case)),
            ("location", _location(case, locale)),
            ("author", tk.author_id or t("handoff.unknown", locale)),
            ("victim_age", t(f"handoff.value.{age}", locale)),
            ("date_seen", _when(tk.created_at, locale)),
            ("description", _description(case, locale)),
            ("contact", t("handoff.on_request", locale)),
        ],
        locale,
    )
    return [*content, "", *_hashes(case, locale, md5=False), "", *_reports(case, locale, now)]


def _ncmec(case: _Case, locale: str, now: datetime) -> list[str]:
    tk = case.ticket
    kind = "ncmec_csam" if case.minor else "ncmec_other"
    content = _lines(
        [
            ("incident_type", t(f"handoff.value.{kind}", locale)),
            ("incident_time", _when(tk.created_at, locale)),
            ("esp", _platform(case)),
            ("uploader", tk.author_id or t("handoff.unknown", locale)),
            ("location", _location(case, locale)),
            ("description", _description(case, locale)),
            ("reasons", _reasons(case, locale)),
            ("file", t("handoff.value.no_file", locale)),
        ],
        locale,
    )
    return [*content, "", *_hashes(case, locale, md5=True), "", *_reports(case, locale, now)]


def _stopncii(case: _Case, locale: str, now: datetime) -> list[str]:
    url = SERVICE_URLS["stopncii"]
    advice = [
        t("handoff.stopncii.intro", locale),
        *(t(f"handoff.stopncii.step{n}", locale, url=url) for n in (1, 2, 3)),
    ]
    facts = _lines(
        [
            ("platform", _platform(case)),
            ("date_seen", _when(case.ticket.created_at, locale)),
            ("description", _description(case, locale)),
        ],
        locale,
    )
    sha256 = case.ticket.sha256 or t("handoff.unknown", locale)
    reference = t(
        "handoff.field_line",
        locale,
        label=t("handoff.stopncii.reference", locale),
        value=f"SHA-256 {sha256}",
    )
    return [*advice, "", *facts, reference]


_BODIES: dict[str, Callable[[_Case, str, datetime], list[str]]] = {
    "pharos": _pharos,
    "3018": _e_enfance,
    "ncmec": _ncmec,
    "stopncii": _stopncii,
}


async def handoff_summary(
    session: AsyncSession,
    ticket_id: int,
    service: str,
    locale: str,
    now: datetime,
    *,
    workspace_id: int | None = None,
) -> str:
    """The plain-text summary of ticket `ticket_id` for `service` (one of SERVICES), in
    `locale`. Raises VeilleError(code="invalid_service") or NotFound, localised; with
    `workspace_id` (a chat command's workspace), a ticket of another workspace is NotFound."""
    if service not in SERVICES:
        raise VeilleError(
            t("handoff.invalid_service", locale, service=service, services=", ".join(SERVICES)),
            code="invalid_service",
        )
    case = await _load(session, ticket_id, locale, workspace_id)
    name = t(f"handoff.service.{service}", locale)
    lines = [
        t("handoff.title", locale, service=name, id=ticket_id),
        t("handoff.prepared", locale, now=_when(now, locale)),
        "",
        *_BODIES[service](case, locale, now),
        "",
        t("handoff.section_case", locale),
        *_lines(_case_fields(case, locale), locale),
        "",
        *_audit(case, locale),
        "",
        t(
            "handoff.paste_stopncii" if service == "stopncii" else "handoff.paste",
            locale,
            service=name,
            url=SERVICE_URLS[service],
        ),
    ]
    return "\n".join(lines)

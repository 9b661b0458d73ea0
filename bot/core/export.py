"""Exports of a workspace's tickets for the authorities and the community's own records: each
ticket with its audit trail, its reports and its appeal, as JSON lines or CSV.

An export leaves Veille's protection, so it carries no image bytes, no preview and no evidence
ciphertext: only the evidence's SHA-256, type and whether it was purged. Reporters' contact
details are included (the authorities an export is made for may need to reach them); the file
is the operator's to keep safe.

CSV layout: one row per ticket; the scalar fields are columns, and the lists and records
(categories, reasons, scores, sweep, evidence, audit_trail, reports, appeal) are JSON text in
their own column. Spreadsheets evaluate a cell that begins with = + - @, a tab or a carriage
return as a formula (OWASP "CSV injection"), and a note, a report's details or a name is
anyone's text: every such cell is prefixed with a single quote.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import or_
from sqlalchemy import select as columns
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.core.clock import as_utc
from bot.store.models import Appeal, Evidence, MediaItem, Report, Ticket, TicketEvent, Workspace

TICKET_FIELDS = (
    "id",
    "kind",
    "channel_id",
    "message_id",
    "thread_id",
    "media_key",
    "author_id",
    "sha256",
    "status",
    "severity",
    "priority",
    "categories",
    "scores",
    "reasons",
    "assignee_id",
    "resolution",
    "resolution_note",
    "message_removed",
    "created_at",
    "updated_at",
    "first_action_at",
    "resolved_at",
    "due_at",
    "sweep",
)
CSV_COLUMNS = (
    "id",
    "platform",
    "workspace",
    "workspace_name",
    "kind",
    "channel_id",
    "message_id",
    "thread_id",
    "media_key",
    "author_id",
    "sha256",
    "pdq",
    "status",
    "severity",
    "priority",
    "categories",
    "scores",
    "reasons",
    "assignee_id",
    "resolution",
    "resolution_note",
    "message_removed",
    "created_at",
    "updated_at",
    "first_action_at",
    "resolved_at",
    "due_at",
    "sweep",
    "evidence",
    "audit_trail",
    "reports",
    "appeal",
)
# What a spreadsheet reads as the start of a formula (OWASP), and their full-width twins,
# which some spreadsheets fold to the ASCII ones.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def _iso(value: Any) -> Any:
    return as_utc(value).isoformat() if isinstance(value, datetime) else value


def _ticket(ticket: Ticket) -> dict[str, Any]:
    return {name: _iso(getattr(ticket, name)) for name in TICKET_FIELDS}


def _event(event: TicketEvent) -> dict[str, Any]:
    return {
        "at": _iso(event.at),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "note": event.note,
        "data": event.data,
    }


def _report(report: Report) -> dict[str, Any]:
    return {
        "reason": report.reason,
        "reporter_id": report.reporter_id,
        "reporter_name": report.reporter_name,
        "good_faith": report.good_faith,
        "contact": report.contact,
        "details": report.details,
        "created_at": _iso(report.created_at),
        "due_at": _iso(report.due_at),
    }


def _appeal(appeal: Appeal | None) -> dict[str, Any] | None:
    if appeal is None:
        return None
    return {
        "author_id": appeal.author_id,
        "statement": appeal.statement,
        "decided_by": appeal.decided_by,
        "status": appeal.status,
        "outcome_by": appeal.outcome_by,
        "outcome_note": appeal.outcome_note,
        "created_at": _iso(appeal.created_at),
        "decided_at": _iso(appeal.decided_at),
    }


def _evidence(row: Any) -> dict[str, Any]:
    """The evidence's facts, never its bytes: whether an encrypted original is still kept."""
    return {
        "sha256": row.sha256,
        "mime": row.mime,
        "original_kept": bool(row.kept) and row.purged_at is None,
        "created_at": _iso(row.created_at),
        "purge_after": _iso(row.purge_after),
        "purged_at": _iso(row.purged_at),
    }


def _grouped(rows: Iterable[Any]) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.ticket_id, []).append(row)
    return grouped


async def export_rows(
    session: AsyncSession, workspace_id: int, since: datetime | None
) -> list[dict[str, Any]]:
    """One dict per ticket of the workspace, oldest first, with its audit trail (`audit_trail`),
    `reports`, `appeal`, `evidence` facts and PDQ. With `since`, only the tickets created or
    updated at or after it (an appeal last week brings back an older ticket)."""
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None:
        return []
    query = select(Ticket).where(Ticket.workspace_id == workspace_id)
    if since is not None:
        since = as_utc(since).astimezone(UTC)  # stored times are UTC
        query = query.where(or_(col(Ticket.created_at) >= since, col(Ticket.updated_at) >= since))
    tickets = list(
        (await session.execute(query.order_by(col(Ticket.created_at), col(Ticket.id)))).scalars()
    )
    ids = [tk.id for tk in tickets]
    if not ids:
        return []
    events = _grouped(
        (
            await session.execute(
                select(TicketEvent)
                .where(col(TicketEvent.ticket_id).in_(ids))
                .order_by(col(TicketEvent.at), col(TicketEvent.id))
            )
        ).scalars()
    )
    reports = _grouped(
        (
            await session.execute(
                select(Report)
                .where(col(Report.ticket_id).in_(ids))
                .order_by(col(Report.created_at), col(Report.id))
            )
        ).scalars()
    )
    appeals = {
        a.ticket_id: a
        for a in (
            await session.execute(select(Appeal).where(col(Appeal.ticket_id).in_(ids)))
        ).scalars()
    }
    # Column by column, so the ciphertext and preview are never even read.
    evidence_query = columns(
        col(Evidence.ticket_id),
        col(Evidence.sha256),
        col(Evidence.mime),
        col(Evidence.ciphertext).is_not(None).label("kept"),
        col(Evidence.created_at),
        col(Evidence.purge_after),
        col(Evidence.purged_at),
    ).where(col(Evidence.ticket_id).in_(ids))
    evidence = {row.ticket_id: _evidence(row) for row in await session.execute(evidence_query)}
    media_ids = [tk.media_item_id for tk in tickets if tk.media_item_id]
    pdq_query = columns(col(MediaItem.id), col(MediaItem.pdq)).where(
        col(MediaItem.id).in_(media_ids)
    )
    pdq = {mid: value for mid, value in await session.execute(pdq_query)} if media_ids else {}
    rows = []
    for tk in tickets:
        assert tk.id is not None
        row = _ticket(tk)
        row.update(
            platform=workspace.platform,
            workspace=workspace.external_id,
            workspace_name=workspace.name,
            pdq=pdq.get(tk.media_item_id or -1),
            evidence=evidence.get(tk.id),
            audit_trail=[_event(e) for e in events.get(tk.id, [])],
            reports=[_report(r) for r in reports.get(tk.id, [])],
            appeal=_appeal(appeals.get(tk.id)),
        )
        rows.append(row)
    return rows


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """One JSON object per line (UTF-8, not ASCII-escaped); the number of lines written."""
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


def neutralise(cell: str) -> str:
    """`cell` made inert for spreadsheets: a leading formula character gets a single quote."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return neutralise(text)


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """The CSV described in the module docstring, every cell quoted; the number of rows."""
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in CSV_COLUMNS])
        count += 1
    return count

"""A scan becomes a Decision, committed in ONE transaction with its tickets, evidence, audit
events, scan records and outbox actions, before the platform is touched.

The same event delivered twice finds its tickets by their unique key and records nothing new:
no second ticket, no second action, no second offence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import inbox, outbox, policy, quarantine
from bot.core.appeals import enqueue_notice
from bot.core.audit import audit
from bot.core.crypto import EvidenceCipher
from bot.core.errors import EvidenceKeyMissing
from bot.core.failpoints import failpoint
from bot.core.gateway import Gateway
from bot.core.help import help_guidance
from bot.core.i18n import t
from bot.core.pipeline import Scan, ScannedMedia
from bot.core.types import Decision
from bot.core.verdict import Severity, Verdict
from bot.store import repos, victims_repo
from bot.store.models import Ticket, Workspace

log = logging.getLogger(__name__)


@dataclass
class _Opened:
    ticket: Ticket
    media: ScannedMedia | None
    preview: bytes | None = None


def _media_key(media: ScannedMedia | None) -> str:
    """The ticket's media key: the ref's key, or the image's own URL when a page gave several."""
    if media is None:
        return ""
    return (media.ref.key if media.url == media.ref.url else media.url)[:500]


def _ticket_from(
    workspace: Workspace,
    scan: Scan,
    verdict: Verdict,
    media: ScannedMedia | None,
    kind: str,
    now: datetime,
) -> Ticket:
    event = scan.event
    assert workspace.id is not None
    return Ticket(
        workspace_id=workspace.id,
        kind=kind,
        channel_id=event.channel_id,
        message_id=event.message_id,
        thread_id=event.thread_id,
        media_key=_media_key(media),
        author_id=event.author.user_id,
        sha256=media.sha256 if media else None,
        severity=verdict.severity.name,
        priority=kind == "help_request",
        categories=list(verdict.categories),
        scores={k: round(float(v), 4) for k, v in verdict.scores.items()},
        reasons=list(dict.fromkeys(verdict.reasons))[:10],
        created_at=now,
        updated_at=now,
    )


async def commit(
    store: repos.Store,
    workspace: Workspace,
    scan: Scan,
    *,
    now: datetime,
    cipher: EvidenceCipher | None,
    gateways: Mapping[str, Gateway],
    versions_key: str,
    inbox_id: int | None = None,
) -> Decision:
    """Record what Veille saw and decided for one message; returns the Decision. `inbox_id`
    (the event's inbox row) is marked done in the same transaction."""
    flagged = [m for m in scan.media if m.verdict is not None and m.verdict.flagged]
    text = scan.text if scan.text is not None and scan.text.flagged else None
    previews = {
        id(m): await asyncio.to_thread(quarantine.blurred_preview, m.prepared.frames[0].image)
        for m in flagged
        if m.prepared is not None
        and m.verdict is not None
        and m.verdict.severity < Severity.CRITICAL  # CRITICAL keeps no preview either
        and not m.verdict.minor_suspected  # a minor may be present: no preview anywhere
    }
    async with store.write(touches_settings=False) as session:
        await record_media(session, workspace, scan, now, versions_key)
        await inbox.mark_done(session, inbox_id)
        if not flagged and text is None:  # the usual message: nothing more to write
            return policy.decide([], scan.text, workspace.actions, 0)
        ws = await session.get(Workspace, workspace.id)  # current, and in this transaction
        assert ws is not None and ws.id is not None
        opened: list[_Opened] = []
        new: list[_Opened] = []
        for media in flagged:
            assert media.verdict is not None
            row = _ticket_from(ws, scan, media.verdict, media, "detection", now)
            if media.sha256:
                item = await repos.media_item(session, media.sha256)
                row.media_item_id = item.id if item else None
            ticket, is_new = await repos.open_ticket(session, row)
            entry = _Opened(ticket, media, previews.get(id(media)))
            opened.append(entry)
            if is_new:
                new.append(entry)
        if text is not None:
            kind = "help_request" if policy.is_help_request(text) else "detection"
            ticket, is_new = await repos.open_ticket(
                session, _ticket_from(ws, scan, text, None, kind, now)
            )
            opened.append(_Opened(ticket, None))
            if is_new:
                new.append(opened[-1])
        verdicts = [m.verdict for m in flagged if m.verdict is not None]
        decision = policy.decide(verdicts, scan.text, ws.actions, 0)
        decision.ticket_ids = [o.ticket.id for o in opened if o.ticket.id is not None]
        if not new:
            return decision  # nothing flagged, or a duplicate delivery: nothing more to do
        if decision.severity >= Severity.QUARANTINE and not decision.help_request:
            count = await repos.count_offence(session, ws.id, scan.event.author.user_id, now)
            decision = policy.decide(verdicts, scan.text, ws.actions, count)
            decision.ticket_ids = [o.ticket.id for o in opened if o.ticket.id is not None]
        await session.flush()
        for entry in new:
            await _keep_evidence(session, ws, entry, cipher, now)
            audit(
                session,
                workspace_id=ws.id,
                ticket_id=entry.ticket.id,
                actor=None,
                action="opened",
                at=now,
                data={"severity": entry.ticket.severity, "text": scan.event.text[:500]},
            )
        await _enqueue_actions(session, ws, scan, decision, new, gateways, now)
        failpoint("before-commit")  # all rows written in the open transaction, none committed
    failpoint("after-commit")  # committed; the caller has not woken the outbox yet
    return decision


async def record_media(
    session: AsyncSession,
    ws: Workspace,
    scan: Scan,
    now: datetime,
    versions_key: str,
    *,
    count: bool = True,
) -> None:
    """The verdict cache rows of the message's media and where they were posted (sightings,
    which sweeps for copies search); `count` adds the digest's scan records."""
    assert ws.id is not None
    event = scan.event
    for media in scan.media:
        severity = media.verdict.severity.name if media.verdict else "NONE"
        categories = list(media.verdict.categories) if media.verdict else []
        if count:
            await repos.record_scan(
                session,
                ws.id,
                event.channel_id,
                "url" if media.ref.kind == "link" else "image",
                severity,
                categories,
                now,
            )
        if media.sha256 and media.cached and media.prepared is None:
            if await repos.touch_media(session, media.sha256, now):
                continue  # a clean repeat from the cache: only its sighting is new
        if media.sha256 and (media.prepared is not None or media.cached):
            prepared = media.prepared
            await repos.record_media(
                session,
                sha256=media.sha256,
                mime=prepared.mime if prepared else "",
                width=prepared.width if prepared else None,
                height=prepared.height if prepared else None,
                verdict=None if media.cached else media.raw,
                verdict_key=versions_key,
                pdq=media.pdq,
                pdq_quality=media.pdq_quality,
                seen_at=now,
                signature=media.signature,
            )
    for media in scan.media:
        if media.sha256:
            await _record_sighting(session, ws, scan, media, now)
    if scan.text is not None and count:
        await repos.record_scan(
            session,
            ws.id,
            event.channel_id,
            "text",
            scan.text.severity.name,
            list(scan.text.categories),
            now,
        )


async def _record_sighting(
    session: AsyncSession, ws: Workspace, scan: Scan, media: ScannedMedia, now: datetime
) -> None:
    assert ws.id is not None and media.sha256 is not None
    event = scan.event
    if not event.message_id or event.message_id.startswith("scan-"):
        return  # /scan and "Scan with Veille" on an upload: nothing posted to sweep
    await victims_repo.record_sighting(
        session,
        workspace_id=ws.id,
        channel_id=event.channel_id,
        message_id=event.message_id,
        thread_id=event.thread_id,
        author_id=event.author.user_id,
        media_key=_media_key(media),
        sha256=media.sha256,
        seen_at=now,
    )


async def _keep_evidence(
    session: AsyncSession,
    ws: Workspace,
    entry: _Opened,
    cipher: EvidenceCipher | None,
    now: datetime,
) -> None:
    """Encrypted original + blurred preview; CRITICAL: hashes only; no key: hashes only, said
    on the ticket (the message is still removed and ticketed)."""
    media, ticket = entry.media, entry.ticket
    if media is None or media.sha256 is None or ticket.id is None:
        return
    critical = ticket.severity == Severity.CRITICAL.name
    mime = media.prepared.mime if media.prepared else ""
    retention = ws.retention_days
    if media.verdict is not None and media.verdict.minor_suspected:
        retention = min(retention, quarantine.MINOR_SUSPECTED_RETENTION_DAYS)
    try:
        evidence = quarantine.new_evidence(
            ticket_id=ticket.id,
            sha256=media.sha256,
            mime=mime,
            data=media.data,
            preview_png=entry.preview,
            cipher=cipher,
            critical=critical,
            created_at=now,
            retention_days=retention,
        )
    except EvidenceKeyMissing:
        log.error("VEILLE_SECRET_KEY is not set: ticket %s keeps hashes only", ticket.id)
        ticket.reasons = [*ticket.reasons, t("core.evidence.no_key", ws.locale)]
        evidence = quarantine.new_evidence(
            ticket_id=ticket.id,
            sha256=media.sha256,
            mime=mime,
            data=None,
            preview_png=None,
            cipher=None,
            critical=True,
            created_at=now,
            retention_days=retention,
        )
    session.add(evidence)


async def _enqueue_actions(
    session: AsyncSession,
    ws: Workspace,
    scan: Scan,
    decision: Decision,
    new: list[_Opened],
    gateways: Mapping[str, Gateway],
    now: datetime,
) -> None:
    """The platform actions, in the order they should happen: removal first."""
    event, lang = scan.event, ws.locale
    primary = new[0].ticket.id
    assert primary is not None
    # The author is told what was removed: a text request has no image (no media on its ticket).
    about_text = all(entry.media is None for entry in new)
    gateway = gateways.get(event.platform)
    removed = decision.delete and (gateway is None or gateway.can_delete_messages)
    if decision.delete:
        if removed:
            await outbox.delete_message(
                session,
                ws,
                event.channel_id,
                event.message_id,
                key=f"{primary}:delete",
                ticket_id=primary,
                now=now,
            )
        else:  # Slack without an admin token: hide it as well as we can and ask for removal
            await outbox.post_text(
                session,
                ws,
                event.channel_id,
                t("core.tombstone", lang),
                key=f"{primary}:tombstone",
                ticket_id=primary,
                now=now,
                thread_id=event.thread_id or event.message_id,
            )
            please = "core.author.please_delete_text" if about_text else "core.author.please_delete"
            await outbox.send_private(
                session,
                ws,
                event.author.user_id,
                t(please, lang),
                key=f"{primary}:ask_delete",
                ticket_id=primary,
                now=now,
                channel_id=event.channel_id,
            )
            if ws.safety_channel_id:
                await outbox.post_text(
                    session,
                    ws,
                    ws.safety_channel_id,
                    t(
                        "core.alert.cannot_delete",
                        lang,
                        id=primary,
                        channel=event.channel_id,
                        message=event.message_id,
                    ),
                    key=f"{primary}:cannot_delete",
                    ticket_id=primary,
                    now=now,
                )
    for entry in new:
        tid = entry.ticket.id
        assert tid is not None
        await outbox.post_ticket_card(session, ws, tid, now)
        quarantine_channel = ws.quarantine_channel_id or ws.safety_channel_id
        if (
            entry.preview is not None
            and quarantine_channel
            and entry.ticket.severity == "QUARANTINE"
        ):
            await outbox.post_preview_card(session, ws, tid, quarantine_channel, now)
        if entry.ticket.kind == "help_request":
            await outbox.send_private(
                session,
                ws,
                event.author.user_id,
                help_guidance(lang),
                key=f"{tid}:help",
                ticket_id=tid,
                now=now,
                channel_id=event.channel_id,
            )
    if decision.alert_admins and ws.safety_channel_id:
        alert = (
            "core.alert.critical" if decision.severity == Severity.CRITICAL else "core.alert.minor"
        )
        await outbox.post_text(
            session,
            ws,
            ws.safety_channel_id,
            t(alert, lang, id=primary, admins=" ".join(ws.admin_role_ids or [])),
            key=f"{primary}:alert_admins",
            ticket_id=primary,
            now=now,
        )
    if decision.notify_author and removed:
        # The notice says Veille removed the message: untrue when it could not (the author was
        # asked to delete it instead, above) or the workspace keeps messages up for review.
        # It gives the reasons and who decided, with an Appeal button (DSA Art. 17 and 20).
        await enqueue_notice(
            session,
            ws,
            new[0].ticket,
            now,
            by_moderator=False,
            key=f"{primary}:notify",
            text=t(
                "core.author.quarantined_text" if about_text else "core.author.quarantined", lang
            ),
        )
    if decision.timeout_author:
        await outbox.timeout_member(
            session,
            ws,
            event.author.user_id,
            policy.TIMEOUT_SECONDS,
            t("core.timeout_reason", lang),
            key=f"{primary}:timeout",
            ticket_id=primary,
            now=now,
        )

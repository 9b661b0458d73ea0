"""The victims' side of the `Veille` facade: reports, appeals, /protect, sweeps and handoff
summaries (ARCHITECTURE: "Victims first"). `Veille` inherits these methods; the rules live in
reports.py, appeals.py, protect.py and sweep.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.core import appeals, banks, decisions, policy, protect, reports, sweep
from bot.core.audit import audit
from bot.core.clock import as_utc
from bot.core.errors import NotFound, VeilleError
from bot.core.gateway import Reply
from bot.core.i18n import normalise_locale, t
from bot.core.outbox import refresh_card
from bot.core.pipeline import Scan
from bot.core.scanner import prepare_image
from bot.core.types import Actor, MessageEvent, ReportForm
from bot.store import repos, victims_repo
from bot.store.models import Ticket, Workspace

if TYPE_CHECKING:
    from bot.core.clock import Clock
    from bot.core.gateway import Gateway
    from bot.core.outbox import Outbox
    from bot.core.pipeline import Pipeline
    from bot.core.types import Role
    from bot.core.verdict import Thresholds
    from bot.settings import Settings

log = logging.getLogger(__name__)

SWEEP_WAIT_S = 1.5
# How each platform's people list and add protections (the protect replies name them).
PROTECT_LIST = {"discord": "/protect", "slack": "/veille protect list"}
PROTECT_ADD = {"discord": "/protect image:", "slack": "/veille protect"}


class VictimsMixin:
    """Methods of `Veille` (bot/core/service.py) for the people harmed."""

    # What `Veille` provides (bot/core/service.py).
    store: repos.Store
    clock: Clock
    pipeline: Pipeline
    gateways: dict[str, Gateway]
    bank: Any
    outbox: Outbox
    settings: Settings
    thresholds: Thresholds
    owner: str
    _sweeps: set[asyncio.Task[Any]]

    if TYPE_CHECKING:

        async def _authorise(
            self,
            platform: str,
            external_id: str,
            actor: Actor,
            operation: str,
            ticket_id: int | None = None,
            *,
            needed: Role | None = None,
        ) -> Workspace: ...

    # -- reports ----------------------------------------------------------------------------

    async def report_message(
        self,
        platform: str,
        external_id: str,
        actor: Actor,
        event: MessageEvent,
        form: ReportForm,
    ) -> Reply:
        """Anyone reports a message: a priority ticket due in 48 hours (or the one already open
        for that message), the reporter acknowledged privately."""
        ws = await self._authorise(platform, external_id, actor, "report")
        assert ws.id is not None
        reports.validate(form, reports.reporter_locale(actor, ws))
        scan = await self._scan_reported(ws, event)
        now = self.clock.now()
        async with self.store.write() as session:
            row = await session.get(Workspace, ws.id)
            assert row is not None
            await decisions.record_media(session, row, scan, now, scan.cache_key, count=False)
            ticket, text = await reports.file_report(session, row, scan, form, actor, now)
        self.outbox.wake()
        return Reply(
            text=text,
            extras={
                "ticket_id": ticket.id,
                "due_at": ticket.due_at.isoformat() if ticket.due_at else None,
            },
        )

    async def _scan_reported(self, ws: Workspace, event: MessageEvent) -> Scan:
        """The reported message's media, hashed and scored for the moderators. A scan that
        fails still files the report (a report is never lost to a download error)."""
        async with self.store.read() as session:
            scope = await banks.scope_of(session, ws.id or 0)
        try:
            return await self.pipeline.scan(
                event, policy.thresholds_for(self.thresholds, ws.sensitivity), scope, ws.locale
            )
        except Exception:
            log.exception(
                "scanning reported message %s failed; filing the report anyway", event.message_id
            )
            return Scan(event=event)

    async def check_report_deadlines(self, now: datetime | None = None) -> int:
        """Alert safety channels about report tickets unresolved for 36 hours (once each)."""
        async with self.store.write() as session:
            real = self.clock.now()  # a `now` ahead (a test, a catch-up) still sends at once
            when = as_utc(now) if now is not None else real
            alerted = await reports.alert_due(session, when, queue_at=min(when, real))
        if alerted:
            self.outbox.wake()
        return len(alerted)

    # -- appeals ----------------------------------------------------------------------------

    async def _appeal(
        self,
        platform: str,
        external_id: str,
        actor: Actor,
        ticket_id: int,
        note: str | None,
    ) -> Reply:
        """The author contests a removal (from their DM: `external_id` may be "")."""
        async with self.store.read() as session:
            ticket = await session.get(Ticket, ticket_id)
            ws = await session.get(Workspace, ticket.workspace_id) if ticket else None
        lang = normalise_locale(actor.locale) if actor.locale else (ws.locale if ws else "en")
        if (
            ticket is None
            or ws is None
            or ws.platform != platform
            or (external_id and ws.external_id != external_id)
            or ticket.author_id != actor.user_id
        ):
            raise NotFound(t("victims.appeal.not_yours", lang, id=ticket_id))
        if not (note or "").strip():
            async with self.store.read() as session:  # say "already" before a form is filled
                if await victims_repo.appeal_of(session, ticket_id) is not None:
                    raise VeilleError(
                        t("victims.appeal.already", lang, id=ticket_id), code="appealed"
                    )
            return Reply(open_modal="appeal")
        now = self.clock.now()
        async with self.store.write() as session:
            row = await session.get(Ticket, ticket_id)
            workspace = await session.get(Workspace, ws.id)
            assert row is not None and workspace is not None
            _, event = await appeals.file_appeal(session, workspace, row, actor, note or "", now)
            await refresh_card(session, workspace, row, event, now)
        self.outbox.wake()
        return Reply(text=t("victims.appeal.received", lang, id=ticket_id))

    # -- /protect ---------------------------------------------------------------------------

    async def protect(
        self,
        platform: str,
        external_id: str,
        actor: Actor,
        image: bytes,
        label: str = "",
    ) -> Reply:
        """Bank the hashes of a photo someone fears will be shared; never its bytes."""
        from detectors.hashes import compute_signature

        ws = await self._authorise(platform, external_id, actor, "protect")
        lang = normalise_locale(actor.locale) if actor.locale else ws.locale
        try:
            prepared = await asyncio.to_thread(
                prepare_image, image, max_pixels=self.settings.max_image_pixels
            )
            signature = await asyncio.to_thread(compute_signature, prepared.frames[0].image)
        except Exception as exc:  # unreadable: say so, keep nothing
            log.info("protect: unreadable image (%s)", type(exc).__name__)
            raise VeilleError(t("victims.protect.unreadable", lang), code="unreadable") from None
        finally:
            del image  # the only reference this function held
        now = self.clock.now()
        async with self.store.write() as session:
            row = await session.get(Workspace, ws.id)
            assert row is not None
            protection, added = await protect.add(
                session, row, actor, signature, prepared.sha256, prepared.md5, label, now, lang
            )
        del prepared
        if self.bank is not None and added:
            self.bank.add(added)
        swept = await self._sweep(ws.id or 0, added, cause="protect", actor=actor)
        return Reply(
            text=t(
                "victims.protect.done",
                lang,
                id=protection.id,
                found=swept.found,
                command=PROTECT_LIST.get(platform, "/protect"),
            ),
            extras={"protection_id": protection.id, "swept": swept.found},
        )

    async def protections(self, platform: str, external_id: str, actor: Actor) -> Reply:
        ws = await self._authorise(platform, external_id, actor, "protect")
        lang = normalise_locale(actor.locale) if actor.locale else ws.locale
        async with self.store.read() as session:
            found = await victims_repo.protections_of(session, ws.id or 0, actor.user_id)
        items = [
            {"id": p.id, "label": p.label, "created_at": p.created_at.isoformat()} for p in found
        ]
        lines = [
            t(
                "victims.protect.line",
                lang,
                id=p.id,
                label=p.label or "-",
                date=f"{p.created_at:%Y-%m-%d}",
            )
            for p in found
        ]
        text = (
            "\n".join([t("victims.protect.list", lang), *lines])
            if lines
            else t("victims.protect.none", lang, command=PROTECT_ADD.get(platform, "/protect"))
        )
        return Reply(text=text, extras={"protections": items})

    async def withdraw_protection(
        self, platform: str, external_id: str, actor: Actor, protection_id: int
    ) -> Reply:
        ws = await self._authorise(platform, external_id, actor, "protect")
        lang = normalise_locale(actor.locale) if actor.locale else ws.locale
        async with self.store.write() as session:
            row = await session.get(Workspace, ws.id)
            assert row is not None
            _, removed = await protect.withdraw(
                session, row, actor, protection_id, self.clock.now(), lang
            )
        if self.bank is not None and removed:
            self.bank.remove(removed)
        return Reply(text=t("victims.protect.withdrawn", lang, id=protection_id))

    # -- sweeps and handoff -------------------------------------------------------------------

    async def _sweep(
        self,
        workspace_id: int,
        entries: Sequence[Any],
        *,
        cause: str,
        source_ticket_id: int | None = None,
        actor: Actor | None = None,
    ) -> sweep.SweepResult:
        """Sweep for copies of just-banked entries. The person who banked them waits at most
        `SWEEP_WAIT_S` (a button must be answered within Discord's 3 s); a longer sweep goes on
        in the background. A failure is logged, never raised at them: the entries are banked,
        so future posts are caught anyway. It is recorded first (sweep.record): cut short by a
        stop, it runs again in another process (`resume_sweeps`)."""
        pending_id = await sweep.record(
            self.store,
            workspace_id,
            entries,
            cause=cause,
            source_ticket_id=source_ticket_id,
            actor=actor,
            owner=self.owner,
            now=self.clock.now(),
        )
        task = asyncio.create_task(
            self._run_sweep(
                workspace_id,
                entries,
                cause=cause,
                source_ticket_id=source_ticket_id,
                actor=actor,
                pending_id=pending_id,
            )
        )
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)
        done, _ = await asyncio.wait({task}, timeout=SWEEP_WAIT_S)
        return task.result() if done else sweep.SweepResult()

    async def _run_sweep(
        self,
        workspace_id: int,
        entries: Sequence[Any],
        *,
        cause: str,
        source_ticket_id: int | None,
        actor: Actor | None,
        pending_id: int | None = None,
    ) -> sweep.SweepResult:
        try:
            result = await sweep.sweep(
                self.store,
                workspace_id,
                entries,
                now=self.clock.now(),
                gateways=self.gateways,
                cause=cause,
                source_ticket_id=source_ticket_id,
                actor=actor,
                pending_id=pending_id,
            )
        except Exception:
            log.exception("sweep after %s in workspace %s failed", cause, workspace_id)
            await sweep.finished(self.store, pending_id, failed=True)
            return sweep.SweepResult()
        await sweep.finished(self.store, pending_id)  # a sweep with nothing to act on
        if result.found:
            self.outbox.wake()
        return result

    async def resume_sweeps(self) -> int:
        """Run again the recorded sweeps a stop cut short (their holder's lease ran out);
        returns how many."""
        resumed = await sweep.claim(self.store, self.owner, self.clock.now())
        for job in resumed:
            log.warning("resuming a sweep after %s in workspace %s", job.cause, job.workspace_id)
            await self._run_sweep(
                job.workspace_id,
                job.entries,
                cause=job.cause,
                source_ticket_id=job.source_ticket_id,
                actor=job.actor,
                pending_id=job.pending_id,
            )
        return len(resumed)

    async def wait_for_sweeps(self) -> None:
        """Let running sweeps finish (tests, and a stop that drains)."""
        while self._sweeps:
            await asyncio.gather(*list(self._sweeps), return_exceptions=True)

    async def handoff(
        self, platform: str, external_id: str, actor: Actor, ticket_id: int, service: str
    ) -> Reply:
        """A prefilled summary for a moderator to paste into PHAROS, 3018, NCMEC or StopNCII's
        own form (admins, privately). Veille sends nothing anywhere."""
        from bot.core.handoff import handoff_summary

        ws = await self._authorise(platform, external_id, actor, "handoff", ticket_id)
        async with self.store.write() as session:
            ticket = await repos.ticket_in(session, ws.id or 0, ticket_id)
            if ticket is None:
                raise NotFound(t("core.ticket.not_found", ws.locale, id=ticket_id))
            text = await handoff_summary(
                session, ticket_id, service, ws.locale, self.clock.now(), workspace_id=ws.id
            )
            audit(
                session,
                workspace_id=ws.id,
                ticket_id=ticket_id,
                actor=actor,
                action="handoff",
                at=self.clock.now(),
                data={"service": service},
            )
        return Reply(text=text, ephemeral=True, extras={"service": service})

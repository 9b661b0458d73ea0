"""`Veille`: the one facade the platform adapters talk to (ARCHITECTURE: "Core service API").

Every method a person triggers takes the Actor and checks permissions here; a refusal is
written to the audit trail, then raised as PermissionDenied with a localised message.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import cards, decisions, inbox, outbox, permissions, policy, quarantine, tickets
from bot.core.actions import action_named
from bot.core.audit import audit
from bot.core.bank_sync import BankSync
from bot.core.banks import bank_confirmed, scope_of
from bot.core.clock import Clock
from bot.core.crypto import EvidenceCipher
from bot.core.errors import NotFound, PermissionDenied, VeilleError
from bot.core.gateway import Gateway, GatewayError, Reply
from bot.core.i18n import normalise_locale, t
from bot.core.markup import inert
from bot.core.outbox import Outbox
from bot.core.pipeline import Fetcher, ImageBatcher, Pipeline
from bot.core.scanner import Scanner, prepare_image
from bot.core.settings_cache import DecisionContext, SettingsCache
from bot.core.types import Actor, Decision, MessageEvent, Role, SetupInput, WorkspaceView
from bot.core.verdict import Severity, Thresholds
from bot.core.victims_service import VictimsMixin
from bot.core.watchdog import LoopWatchdog
from bot.core.workspace_setup import apply_setup, workspace_view
from bot.settings import Settings
from bot.store import bank_sharing, repos, victims_repo
from bot.store.models import Ticket, Workspace

log = logging.getLogger(__name__)

SHARING_STEPS = ("publish", "unpublish", "subscribe", "unsubscribe")


class Veille(VictimsMixin):
    """Moderation core: scanning, decisions, tickets, quarantine, outbox. Build it with
    `bot.app.build_veille`; call `start()` to run the outbox worker and `aclose()` to stop."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        scanner: Scanner,
        *,
        fetcher: Fetcher | None = None,
        bank: Any = None,
        bank_marks: tuple[int, int] | None = None,
        clock: Clock | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.settings = settings
        self.store = repos.Store(engine)
        self.scanner = scanner
        self.bank = bank  # detectors.hashes.HashBank shared with the hashes detector, or None
        self.clock = clock or Clock()
        self.thresholds = thresholds or scanner.thresholds
        secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
        self.cipher = EvidenceCipher(secret) if secret else None
        self.gateways: dict[str, Gateway] = {}
        self.fetcher = fetcher
        self.batcher = ImageBatcher(
            scanner,
            batch_size=settings.batch_size,
            wait_s=settings.batch_wait_ms / 1000,
            queue_size=settings.queue_size,
        )
        self.pipeline = Pipeline(
            scanner,
            self.store,
            self.gateways,
            fetcher=fetcher,
            bank=bank,
            batcher=self.batcher,
            max_bytes=settings.fetch_max_bytes,
            max_pixels=settings.max_image_pixels,
        )
        self.outbox = Outbox(self.store, self.clock, self.gateways)
        self.settings_cache = SettingsCache()
        self.watchdog = LoopWatchdog()  # logs any event-loop stall over 100 ms, with its stack
        self.role = settings.role
        self.owner = self.outbox.owner  # this process, in inbox claims and outbox leases
        # Other processes' bank changes reach `bank` (loaded after `bank_marks` were read).
        self.bank_sync = (
            BankSync(self.store, bank, bank_marks) if bank is not None and bank_marks else None
        )
        self._worker: asyncio.Task[None] | None = None
        self._replayer: asyncio.Task[None] | None = None
        self._syncer: asyncio.Task[None] | None = None
        self._claimer: asyncio.Task[None] | None = None
        self._deciding: set[asyncio.Task[None]] = set()  # a worker's claimed events in progress
        self._sweeps: set[asyncio.Task[Any]] = set()  # sweeps for copies still running

    # -- life cycle -------------------------------------------------------------------------

    def register_gateway(self, gateway: Gateway) -> None:
        """One Gateway per platform; actions waiting for it run once it is registered."""
        self.gateways[str(gateway.platform)] = gateway
        self.outbox.wake()

    def start(self) -> None:
        """Start the outbox worker (it also picks up actions a crash left pending), the inbox
        work (a worker's claims, or the replay of events a crash left undecided), the bank sync
        and the loop-lag watchdog."""
        self.watchdog.start()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self.outbox.run_forever(), name="veille-outbox")
        if self.role != "gateway" and (self._replayer is None or self._replayer.done()):
            self._replayer = asyncio.create_task(self._replay_forever(), name="veille-replay")
        if self.role == "worker" and (self._claimer is None or self._claimer.done()):
            self._claimer = asyncio.create_task(self._work_forever(), name="veille-worker")
        if self.bank_sync is not None and (self._syncer is None or self._syncer.done()):
            self._syncer = asyncio.create_task(self.bank_sync.run(), name="veille-bank-sync")

    async def _replay_forever(self, every_s: float = 30.0) -> None:
        """Every `every_s`: events and sweeps a stop cut short (their holder's lease ran out).
        A worker's claim loop already takes over events whose lease ran out."""
        replays = (
            (self.resume_sweeps,)
            if self.role == "worker"
            else (self.replay_inbox, self.resume_sweeps)
        )
        while True:
            for replay in replays:
                try:
                    await replay()
                except Exception:  # the replayer must outlive a bad row or a database hiccup
                    log.exception("%s failed", replay.__name__)
            await asyncio.sleep(every_s)

    async def replay_inbox(self) -> int:
        """Handle again every event received but never decided whose holder's lease ran out (a
        stop or a crash cut it short); returns how many were replayed."""
        claimed = await inbox.claim(
            self.store, self.owner, self.clock.now(), lease_s=self.settings.inbox_lease_s, limit=100
        )
        for inbox_id, event in claimed:
            log.warning(
                "replaying message %s of %s:%s, left undecided by a stop",
                event.message_id,
                event.platform,
                event.workspace_id,
            )
            try:
                await self._decide_recorded(inbox_id, event)
            except Exception:  # counted by _decide_recorded; the next event still goes
                log.exception("replay of message %s failed", event.message_id)
        return len(claimed)

    async def _work_forever(self, idle_s: float = 0.2) -> None:
        """The worker role: claim recorded events while there is room (up to
        `worker_concurrency` decided at once), decide each, poll again when none are left."""
        room = self.settings.worker_concurrency
        log.info("worker %s: claiming recorded events, %d at a time", self.owner, room)
        while True:
            free = room - len(self._deciding)
            claimed: list[tuple[int, MessageEvent]] = []
            if free > 0:
                try:
                    claimed = await inbox.claim(
                        self.store,
                        self.owner,
                        self.clock.now(),
                        lease_s=self.settings.inbox_lease_s,
                        limit=free,
                    )
                except Exception:  # a database hiccup: try again after the pause
                    log.exception("claiming recorded events failed")
            for inbox_id, event in claimed:
                task = asyncio.create_task(self._decide_quietly(inbox_id, event))
                self._deciding.add(task)
                task.add_done_callback(self._deciding.discard)
            if free <= 0:
                await asyncio.wait(set(self._deciding), return_when=asyncio.FIRST_COMPLETED)
            elif not claimed:
                await asyncio.sleep(idle_s)

    async def _decide_quietly(self, inbox_id: int, event: MessageEvent) -> None:
        try:
            await self._decide_recorded(inbox_id, event)
        except Exception:  # counted (the row stays pending, then dead); the worker goes on
            log.exception("deciding message %s failed", event.message_id)

    async def aclose(self, drain_s: float = 0.0) -> None:
        """Stop. With `drain_s`, the outbox first finishes the run in progress (up to that many
        seconds) so no action is cut between its platform call and its commit (SIGTERM)."""
        if drain_s > 0 and self._sweeps:  # a sweep's removals are queued at its end
            try:
                async with asyncio.timeout(drain_s):
                    await self.wait_for_sweeps()
            except TimeoutError:
                pass
        for task in list(self._sweeps):
            task.cancel()
        await asyncio.gather(*self._sweeps, return_exceptions=True)
        for background in (self._replayer, self._syncer, self._claimer):
            if background is not None:
                background.cancel()
                await asyncio.gather(background, return_exceptions=True)
        self._replayer = self._syncer = self._claimer = None
        if self._deciding:  # a worker's claimed events: finish them, or hand them back
            if drain_s > 0:
                await asyncio.wait(set(self._deciding), timeout=drain_s)
            for task in list(self._deciding):
                task.cancel()
            await asyncio.gather(*self._deciding, return_exceptions=True)
        if self.role != "all":
            try:  # what this process still held goes to the next claimant at once
                await inbox.release(self.store, self.owner)
            except Exception:
                log.warning("could not hand back claimed events; their leases lapse", exc_info=True)
        if self._worker is not None:
            self.outbox.stop()
            if drain_s > 0:
                try:
                    async with asyncio.timeout(drain_s):
                        await asyncio.shield(self._worker)
                except (TimeoutError, asyncio.CancelledError):
                    pass
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        await self.batcher.aclose()
        await self.watchdog.aclose()
        if self.fetcher is not None and hasattr(self.fetcher, "aclose"):
            await self.fetcher.aclose()

    # -- messages ---------------------------------------------------------------------------

    async def handle_message(self, event: MessageEvent) -> Decision:
        """Scan a message and commit the Decision (tickets, evidence, outbox) before any platform
        action; the outbox worker then acts. Delivering the same event twice is harmless. The
        event is recorded in the inbox first, so work a crash cut short is replayed."""
        now = self.clock.now()
        if self.role == "gateway":  # a worker claims it (inbox.claim), scans and decides
            await inbox.record(self.store, event, now)
            return Decision(Severity.NONE, queued=True)
        inbox_id = await inbox.record(
            self.store, event, now, owner=self.owner, lease_s=self.settings.inbox_lease_s
        )
        return await self._decide_recorded(inbox_id, event)

    async def _decide_recorded(self, inbox_id: int | None, event: MessageEvent) -> Decision:
        try:
            return await self._decide(event, inbox_id)
        except Exception as exc:  # counted, left pending for a replay (a stop is not counted)
            await inbox.failed(self.store, inbox_id, f"{type(exc).__name__}: {exc}")
            raise

    async def _decide(self, event: MessageEvent, inbox_id: int | None) -> Decision:
        """Decide `event`; its inbox row is marked done with the Decision (or on its own when
        the message is exempt)."""
        context = await self._decision_context(event)
        ws, override, scope = context.workspace, context.override(event.channel_id), context.scope
        rule = policy.ChannelRule(override.sensitivity, override.allow_listed) if override else None
        if policy.exempt(event, ws.allow_role_ids or [], rule):
            await inbox.settle(self.store, inbox_id)
            return Decision(Severity.NONE)
        if self.bank_sync is not None:  # what another process banked a moment ago counts
            try:
                await self.bank_sync.fresh()
            except Exception:  # the periodic poll catches up; the scan goes on
                log.warning("bank sync before a decision failed", exc_info=True)
        thresholds = policy.thresholds_for(
            self.thresholds, policy.effective_sensitivity(ws.sensitivity, rule)
        )
        scan = await self.pipeline.scan(event, thresholds, scope, ws.locale)
        decision = await decisions.commit(
            self.store,
            ws,
            scan,
            now=self.clock.now(),
            cipher=self.cipher,
            gateways=self.gateways,
            versions_key=scan.cache_key,
            inbox_id=inbox_id,
        )
        for media in scan.media:
            if not media.cached:
                self.pipeline.remember(media, scan.cache_key)
        if decision.ticket_ids:
            self.outbox.wake()
        return decision

    async def scan_event(self, event: MessageEvent, actor: Actor) -> Reply:
        """Scores for a message, for moderators: nothing stored, nothing done."""
        ws = await self._authorise(str(event.platform), event.workspace_id, actor, "scan")
        async with self.store.read() as session:
            scope = await scope_of(session, ws.id or 0)
        scan = await self.pipeline.scan(
            event, policy.thresholds_for(self.thresholds, ws.sensitivity), scope, ws.locale
        )
        lang = ws.locale
        lines: list[str] = []
        results: list[dict[str, object]] = []
        for media in scan.media:
            if media.verdict is None or media.unscanned is not None:
                lines.append(
                    t(
                        "core.scan.error",
                        lang,
                        url=inert(media.url, ws.platform),
                        error=inert(media.error or "?", ws.platform),
                    )
                )
                results.append({"url": media.url, "error": media.error})
                continue
            scores = ", ".join(f"{k} {v:.2f}" for k, v in sorted(media.verdict.scores.items()))
            lines.append(
                t(
                    "core.scan.line",
                    lang,
                    url=inert(media.url, ws.platform),
                    severity=t(f"core.severity.{media.verdict.severity.name}", lang),
                    scores=scores,
                )
            )
            results.append({"url": media.url, **media.verdict.to_json()})
        if scan.text is not None:
            lines.append(
                t(
                    "core.scan.text",
                    lang,
                    severity=t(f"core.severity.{scan.text.severity.name}", lang),
                    scores=", ".join(f"{k} {v:.2f}" for k, v in scan.text.scores.items()),
                )
            )
            results.append({"text": True, **scan.text.to_json()})
        return Reply(
            text="\n".join(lines) or t("core.scan.nothing", lang), extras={"results": results}
        )

    # -- workspaces -------------------------------------------------------------------------

    async def workspace(self, platform: str, external_id: str, name: str = "") -> WorkspaceView:
        ws = await self._workspace_row(platform, external_id, name)
        async with self.store.read() as session:
            return workspace_view(ws, await repos.channel_overrides(session, ws.id or 0))

    async def authorise(
        self, platform: str, external_id: str, actor: Actor, operation: str
    ) -> WorkspaceView:
        """The workspace's settings when `actor` may do `operation` (e.g. before a setup wizard
        opens); otherwise the refusal is audited and PermissionDenied raised."""
        ws = await self._authorise(platform, external_id, actor, operation)
        async with self.store.read() as session:
            return workspace_view(ws, await repos.channel_overrides(session, ws.id or 0))

    async def save_setup(
        self, platform: str, external_id: str, actor: Actor, setup: SetupInput
    ) -> Reply:
        """Apply what a setup wizard collected (admins only)."""
        ws = await self._authorise(platform, external_id, actor, "setup")
        async with self.store.write() as session:
            row = await session.get(Workspace, ws.id)
            assert row is not None
            await apply_setup(session, row, setup, self.clock.now())
            audit(
                session,
                workspace_id=row.id,
                ticket_id=None,
                actor=actor,
                action="setup",
                at=self.clock.now(),
                data={"fields": sorted(k for k, v in vars(setup).items() if v not in (None, ()))},
            )
            counts = await repos.count_tickets(session, row.id or 0)
            card = cards.status_card(row, counts, self.scanner.versions_key, self._outbox_state())
            return Reply(text=t("core.setup.saved", row.locale), card=card)

    async def status(self, platform: str, external_id: str, actor: Actor) -> Reply:
        ws = await self._authorise(platform, external_id, actor, "status")
        async with self.store.read() as session:
            counts = await repos.count_tickets(session, ws.id or 0)
        return Reply(
            card=cards.status_card(ws, counts, self.scanner.versions_key, self._outbox_state())
        )

    def help(self, locale: str | None) -> Reply:
        return Reply(card=cards.help_card(normalise_locale(locale)))

    async def digest_now(self, platform: str, external_id: str, actor: Actor) -> Reply:
        ws = await self._authorise(platform, external_id, actor, "digest_now")
        gateway = self.gateways.get(platform)
        if gateway is None:
            return Reply(text=t("core.no_gateway", ws.locale), ok=False)
        from bot.core.digest import digest_now

        try:
            return await digest_now(self.store, gateway, ws.id or 0, self.clock)
        except GatewayError as exc:
            return Reply(text=t("core.platform_error", ws.locale, error=str(exc)), ok=False)

    # -- tickets ----------------------------------------------------------------------------

    async def ticket_action(
        self,
        platform: str,
        external_id: str,
        actor: Actor,
        action: str,
        ticket_id: int,
        note: str | None = None,
    ) -> Reply:
        """A button or modal on a ticket. Raises PermissionDenied, NotFound or VeilleError."""
        spec = action_named(action)
        if spec is None:
            raise VeilleError(
                t("core.ticket.unknown_action", "en", action=action), code="invalid_action"
            )
        if spec.by_author:  # the author's appeal, often from a DM: checked against the ticket
            return await self._appeal(platform, external_id, actor, ticket_id, note)
        ws = await self._authorise(platform, external_id, actor, action, ticket_id)
        async with self.store.read() as session:
            ticket = await repos.ticket_in(session, ws.id or 0, ticket_id)
        if ticket is None:
            raise NotFound(t("core.ticket.not_found", ws.locale, id=ticket_id))
        if ticket.severity == Severity.CRITICAL.name and spec.critical_role is not None:
            await self._authorise(
                platform, external_id, actor, action, ticket_id, needed=spec.critical_role
            )
        async with self.store.write() as session:
            row = await repos.ticket_in(session, ws.id or 0, ticket_id)
            workspace = await session.get(Workspace, ws.id)
            assert row is not None and workspace is not None
            gateway = self.gateways.get(platform)
            outcome = await tickets.perform(
                session,
                workspace,
                row,
                actor,
                action,
                note,
                now=self.clock.now(),
                cipher=self.cipher,
                can_delete=gateway is None or gateway.can_delete_messages,
            )
        if outcome.bank_entries and self.bank is not None:
            self.bank.add(outcome.bank_entries)  # the next post meets the bank at once
        if action == "confirm":  # known copies still posted come down too (TAKE IT DOWN Act)
            await self._sweep(
                ws.id or 0,
                outcome.bank_entries,
                cause="confirm",
                source_ticket_id=ticket_id,
                actor=actor,
            )
        self.outbox.wake()
        return outcome.reply

    async def list_tickets(
        self, platform: str, external_id: str, actor: Actor, status: str = "open", limit: int = 20
    ) -> Reply:
        ws = await self._authorise(platform, external_id, actor, "list_tickets")
        async with self.store.read() as session:
            found = await repos.list_tickets(session, ws.id or 0, status, max(1, min(limit, 100)))
        return cards.ticket_list(found, ws, self.clock.now(), status)

    async def show_ticket(
        self, platform: str, external_id: str, actor: Actor, ticket_id: int
    ) -> Reply:
        ws = await self._authorise(platform, external_id, actor, "show_ticket", ticket_id)
        async with self.store.read() as session:
            ticket = await repos.ticket_in(session, ws.id or 0, ticket_id)
            if ticket is None:
                raise NotFound(t("core.ticket.not_found", ws.locale, id=ticket_id))
            card = await cards.card_for(session, ticket, "ticket", self.clock.now())
            events = await repos.ticket_events(session, ticket_id)
        history = [
            inert(
                f"{e.at:%Y-%m-%d %H:%M} {e.actor_name or e.actor_id}: {e.action}"
                + (f" — {e.note}" if e.note else ""),
                platform,
            )
            for e in events[-10:]
        ]
        return Reply(
            card=card, text="\n".join(history), extras={"events": [e.action for e in events]}
        )

    # -- hash banks -------------------------------------------------------------------------

    async def add_hashes(
        self, platform: str, external_id: str, actor: Actor, images: list[bytes], bank: str
    ) -> Reply:
        """Bank the given images (admins): the next post of any of them is quarantined."""
        from detectors.hashes import compute_signature

        ws = await self._authorise(platform, external_id, actor, "add_hashes")
        signed, errors = [], 0
        for data in images:
            try:
                prepared = await asyncio.to_thread(
                    prepare_image, data, max_pixels=self.settings.max_image_pixels
                )
                signature = await asyncio.to_thread(compute_signature, prepared.frames[0].image)
            except Exception:  # an unreadable image is counted, the rest still banked
                errors += 1
                continue
            signed.append((signature, prepared.sha256, prepared.md5))
        added: list[Any] = []
        duplicates = 0
        async with self.store.write() as session:
            for signature, sha256, md5 in signed:
                result = await bank_confirmed(
                    session,
                    signature,
                    sha256,
                    None,
                    actor.display_name or actor.user_id,
                    ws.id,
                    bank=bank,
                    md5=md5,
                    source="imported",
                )
                added += result.added
                duplicates += result.duplicates
            await repos.forget_verdicts(session, [sha for _, sha, _ in signed])
            audit(
                session,
                workspace_id=ws.id,
                ticket_id=None,
                actor=actor,
                action="add_hashes",
                at=self.clock.now(),
                data={"bank": bank, "added": len(added)},
            )
        if self.bank is not None and added:
            self.bank.add(added)
        if added:
            await self._sweep(ws.id or 0, added, cause="add_hashes", actor=actor)
        return Reply(
            text=t(
                "core.hashes.added",
                ws.locale,
                images=len(signed),
                added=len(added),
                duplicates=duplicates,
                errors=errors,
                bank=bank,
            )
        )

    async def share_bank(
        self,
        platform: str,
        external_id: str,
        actor: Actor,
        step: str,
        name: str,
        bank: str = "confirmed",
    ) -> Reply:
        """Shared banks (admins, audited): `step` is publish (this community's `bank` as `name`),
        unpublish, subscribe (match another community's shared bank `name`) or unsubscribe.
        Every step is opt-in and revocable; it applies from the next message on."""
        if step not in SHARING_STEPS:
            raise VeilleError(
                t("core.ticket.unknown_action", "en", action=step), code="invalid_action"
            )
        ws = await self._authorise(platform, external_id, actor, "share_banks")
        assert ws.id is not None
        now, by = self.clock.now(), actor.display_name or actor.user_id
        try:
            async with self.store.write() as session:
                if step == "publish":
                    row = await bank_sharing.publish(
                        session, ws.id, name, bank=bank, by=by, now=now
                    )
                elif step == "unpublish":
                    row = await bank_sharing.unpublish(session, ws.id, name, now=now)
                elif step == "subscribe":
                    row = await bank_sharing.subscribe(session, ws.id, name, by=by, now=now)
                else:
                    row = await bank_sharing.unsubscribe(session, ws.id, name, now=now)
                audit(
                    session,
                    workspace_id=ws.id,
                    ticket_id=None,
                    actor=actor,
                    action=f"bank_{step}",
                    at=now,
                    data={"name": row.name, "bank": row.bank},
                )
                views = await bank_sharing.list_shared(session, ws.id)
        except bank_sharing.SharingError as exc:
            raise VeilleError(
                t(f"hashes.shared.error.{exc.code}", ws.locale, name=exc.name), code=exc.code
            ) from exc
        entries = next((v.entries for v in views if v.name == row.name), 0)
        done = {
            "publish": "published",
            "unpublish": "unpublished",
            "subscribe": "subscribed",
            "unsubscribe": "unsubscribed",
        }[step]
        return Reply(
            text=t(
                f"hashes.shared.{done}", ws.locale, name=row.name, bank=row.bank, entries=entries
            )
        )

    async def shared_banks(self, platform: str, external_id: str, actor: Actor) -> Reply:
        """The live shared banks, with what this community publishes and subscribes to."""
        ws = await self._authorise(platform, external_id, actor, "list_shared_banks")
        async with self.store.read() as session:
            views = await bank_sharing.list_shared(session, ws.id)
        lines = [
            t(
                "hashes.shared.line",
                ws.locale,
                name=v.name,
                entries=v.entries,
                flags=(t("hashes.shared.own", ws.locale) if v.own else "")
                + (t("hashes.shared.is_subscribed", ws.locale) if v.subscribed else ""),
            )
            for v in views
        ]
        return Reply(
            text="\n".join(lines) or t("hashes.shared.none", ws.locale),
            extras={"banks": [vars(v) for v in views]},
        )

    # -- housekeeping (the scheduler calls these) ----------------------------------------------

    async def retry_outbox(self) -> int:
        """Run every due outbox action now; returns how many were attempted."""
        return await self.outbox.run_due()

    async def purge_expired_evidence(self) -> int:
        """Drop evidence bytes past each workspace's retention; returns how many were purged."""
        now = self.clock.now()
        async with self.store.write() as session:
            purged = await quarantine.purge_expired(session, now)
            for ticket_id in purged:
                ticket = await session.get(Ticket, ticket_id)
                if ticket is not None:
                    await outbox.withdraw_preview(session, ticket, now)
            await victims_repo.purge_sightings(session, now)  # sweeps look back as far only
        if purged:
            self.outbox.wake()
        return len(purged)

    async def trim_verdict_cache(self, older_than: datetime | timedelta) -> int:
        """Forget cached verdicts of media not seen since `older_than` (a time, or an age)."""
        cutoff = self.clock.now() - older_than if isinstance(older_than, timedelta) else older_than
        async with self.store.write() as session:
            return await repos.trim_verdicts(session, cutoff)

    # -- internals --------------------------------------------------------------------------

    async def _decision_context(self, event: MessageEvent) -> DecisionContext:
        """The workspace, channel rules and bank scope a message is decided under: from the
        settings cache while valid (bot/core/settings_cache.py), else read in one go."""
        key = (str(event.platform), event.workspace_id)
        generation = self.store.generation  # taken before reading: a write meanwhile voids it
        cached = self.settings_cache.get(key, generation, event.workspace_name)
        if cached is not None:
            return cached
        ws = await self._workspace_row(key[0], key[1], event.workspace_name)
        assert ws.id is not None
        async with self.store.read() as session:
            overrides = {o.channel_id: o for o in await repos.channel_overrides(session, ws.id)}
            scope = await scope_of(session, ws.id)
        context = DecisionContext(ws, overrides, scope)
        self.settings_cache.put(key, generation, context)
        return context

    async def _workspace_row(self, platform: str, external_id: str, name: str = "") -> Workspace:
        async with self.store.read() as session:
            ws = await repos.get_workspace(session, platform, external_id)
        if ws is not None and (not name or ws.name == name):
            return ws
        async with self.store.write() as session:
            return await repos.ensure_workspace(
                session, platform, external_id, name=name, locale=self.settings.default_locale
            )

    async def _authorise(
        self,
        platform: str,
        external_id: str,
        actor: Actor,
        operation: str,
        ticket_id: int | None = None,
        *,
        needed: Role | None = None,
    ) -> Workspace:
        """The workspace, when `actor` may do `operation`; otherwise audit and raise."""
        ws = await self._workspace_row(platform, external_id)
        needed = needed or permissions.required_role(operation)
        role = permissions.role_of(ws, actor)
        if permissions.at_least(role, needed):
            return ws
        async with self.store.write() as session:
            known = (
                ticket_id
                if ticket_id and await repos.ticket_in(session, ws.id or 0, ticket_id)
                else None
            )
            audit(
                session,
                workspace_id=ws.id,
                ticket_id=known,
                actor=actor,
                action="denied",
                at=self.clock.now(),
                data={
                    "operation": operation,
                    "role": role.value,
                    "needed": needed.value,
                    "ticket": ticket_id,
                },
            )
        log.info("denied %s to %s in %s/%s", operation, actor.user_id, platform, external_id)
        raise PermissionDenied(
            t("core.denied", ws.locale, needed=t(f"core.role.{needed.value}", ws.locale))
        )

    def _outbox_state(self) -> str:
        running = self._worker is not None and not self._worker.done()
        return "running" if running else "stopped"

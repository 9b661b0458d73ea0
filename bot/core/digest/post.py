"""The two entry points that post a digest: `post_digest` is what the scheduler runs (exactly
once per workspace and period), `digest_now` is what `Veille.digest_now` calls; `build_digest`
makes the card without posting it (previews).

Every read and write goes through the process's one `Store` (`read()`, `write()`): its write lock
is what keeps a digest's claim from meeting another writer's transaction with SQLITE_BUSY."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.core.clock import Clock
from bot.core.digest.render import render_digest
from bot.core.digest.schedule import Period, rolling_period
from bot.core.digest.stats import DigestStats, load_stats
from bot.core.gateway import Card, Gateway, GatewayError, Reply
from bot.core.i18n import t
from bot.store.models import DigestRun, Workspace
from bot.store.repos import Store

log = logging.getLogger(__name__)


DigestOutcome = Literal["posted", "duplicate", "failed", "no_channel", "missing"]


async def post_digest(
    store: Store,
    gateway: Gateway,
    workspace_id: int,
    period: Period,
    clock: Clock,
) -> DigestOutcome:
    """Post the digest of `period` for workspace `workspace_id` (our database id) in its safety
    channel through `gateway` (the one for the workspace's platform), at most once.

    The (workspace, period start) DigestRun row is claimed in its own committed transaction
    BEFORE the platform is touched, so two schedulers or a restart can never both post; the
    row then becomes "posted" (with the message id) or "failed". A failed run may be claimed
    again (a retry); a run left "pending" by a crash mid-post is never retried, because it may
    have been posted. Returns what happened; never raises for a platform failure."""
    async with store.read() as session:
        workspace = await session.get(Workspace, workspace_id)
    if workspace is None:
        return "missing"
    if not workspace.safety_channel_id:
        return "no_channel"
    run_id = await _claim(store, workspace_id, period, clock)
    if run_id is None:
        return "duplicate"
    try:
        async with store.read() as session:
            stats = await load_stats(session, workspace, period)
        card = await render_digest(stats, workspace.locale)
        message_id = await gateway.post_card(
            workspace.external_id, workspace.safety_channel_id, card
        )
    except Exception as exc:  # a rendering bug must not leave the run "pending" forever
        level = logging.WARNING if isinstance(exc, GatewayError) else logging.ERROR
        log.log(
            level,
            "digest for workspace %s, period %s failed: %s",
            workspace_id,
            period.start.isoformat(),
            exc,
            exc_info=not isinstance(exc, GatewayError),
        )
        await _finish(store, run_id, "failed", None, None)
        return "failed"
    await _finish(store, run_id, "posted", message_id, clock.now())
    log.info("digest posted for workspace %s, period %s", workspace_id, period.start.isoformat())
    return "posted"


async def _claim(
    store: Store,
    workspace_id: int,
    period: Period,
    clock: Clock,
) -> int | None:
    """The id of the DigestRun this caller now owns, or None when another run has it."""
    try:
        async with store.write() as session:
            run = DigestRun(
                workspace_id=workspace_id,
                period_start=period.start,
                period_end=period.end,
                status="pending",
                created_at=clock.now(),
            )
            session.add(run)
            await session.flush()
            return run.id
    except IntegrityError:
        pass
    # Only a failed run can be taken over; the conditional UPDATE makes that a single winner.
    async with store.write() as session:
        key = (
            col(DigestRun.workspace_id) == workspace_id,
            col(DigestRun.period_start) == period.start,
        )
        result = await session.execute(
            update(DigestRun)
            .where(*key, col(DigestRun.status) == "failed")
            .values(status="pending")
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return (await session.execute(select(DigestRun.id).where(*key))).scalar_one()


async def _finish(
    store: Store,
    run_id: int,
    status: str,
    message_id: str | None,
    posted_at: datetime | None,
) -> None:
    async with store.write() as session:
        await session.execute(
            update(DigestRun)
            .where(DigestRun.id == run_id)  # type: ignore[arg-type]
            .values(status=status, message_id=message_id, posted_at=posted_at)
        )


async def build_digest(
    store: Store,
    workspace_id: int,
    clock: Clock,
    period: Period | None = None,
) -> tuple[Workspace, DigestStats, Card] | None:
    """The digest card for a workspace without posting or recording it (previews,
    on-demand digests). `period` defaults to the schedule's usual length ending now.
    None when the workspace does not exist."""
    async with store.read() as session:
        workspace = await session.get(Workspace, workspace_id)
        if workspace is None:
            return None
        if period is None:
            period = rolling_period(workspace.digest_schedule, workspace.timezone, clock.now())
        stats = await load_stats(session, workspace, period)
    return workspace, stats, await render_digest(stats, workspace.locale)


async def digest_now(
    store: Store,
    gateway: Gateway,
    workspace_id: int,
    clock: Clock,
) -> Reply:
    """`/digest now`, `/veille digest`: for `Veille.digest_now`, after its permission check.

    Covers the schedule's usual length of time (a day by default) up to now and posts it in
    the safety channel; the Reply (ephemeral) says where. Without a safety channel the digest
    comes back in the Reply's card instead. On-demand digests claim no DigestRun, so they never
    stop the scheduled one. A platform failure raises GatewayError for the caller to report."""
    built = await build_digest(store, workspace_id, clock)
    if built is None:
        raise LookupError(f"no workspace with id {workspace_id}")
    workspace, _stats, card = built
    if not workspace.safety_channel_id:
        return Reply(text=t("digest.no_channel", workspace.locale), card=card, ephemeral=True)
    await gateway.post_card(workspace.external_id, workspace.safety_channel_id, card)
    return Reply(text=t("digest.posted", workspace.locale, channel=workspace.safety_channel_id))

"""SQLModel tables. Every change here needs an Alembic revision (see migrations/README.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot import workspace_settings as settings


def _utcnow() -> datetime:
    """Aware UTC now: the default of every timestamp column. The store's own, so it does not
    import the core; code that decides times passes the core's clock value instead."""
    return datetime.now(UTC)


def _json(default: Any = None) -> Any:
    return Field(
        default_factory=lambda: default() if callable(default) else default,
        sa_column=Column(JSON, nullable=False),
    )


def _when(nullable: bool = False, index: bool = False) -> Any:
    if nullable:
        return Field(
            default=None, sa_column=Column(DateTime(timezone=True), nullable=True, index=index)
        )
    return Field(
        default_factory=_utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=index),
    )


class Workspace(SQLModel, table=True):
    """One Discord guild or Slack team, with what its admins chose in the setup wizard. What
    each setting may be, and its default, is declared in bot/workspace_settings.py."""

    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_workspace_platform_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    locale: str = Field(default=settings.DEFAULT_LOCALE, max_length=8)
    timezone: str = Field(default=settings.DEFAULT_TIMEZONE, max_length=64)
    safety_channel_id: str | None = Field(default=None, max_length=64)
    quarantine_channel_id: str | None = Field(default=None, max_length=64)
    moderator_role_ids: list[str] = _json(list)  # Discord roles or Slack user groups
    moderator_user_ids: list[str] = _json(list)  # Slack: individual moderators
    admin_role_ids: list[str] = _json(list)
    allow_role_ids: list[str] = _json(list)  # authors with these roles are never scanned
    sensitivity: str = Field(default=settings.DEFAULT_SENSITIVITY, max_length=16)
    actions: dict[str, Any] = _json(lambda: dict(settings.ACTION_DEFAULTS))
    digest_schedule: str = Field(default=settings.DEFAULT_DIGEST_SCHEDULE, max_length=64)
    retention_days: int = Field(default=settings.DEFAULT_RETENTION_DAYS)
    sla_hours: int = Field(default=settings.DEFAULT_SLA_HOURS)
    setup_completed: bool = Field(default=False)
    created_at: datetime = _when()
    updated_at: datetime = _when()


class ChannelOverride(SQLModel, table=True):
    """Per-channel sensitivity, or an allow-listed channel that is never scanned."""

    __tablename__ = "channel_overrides"
    __table_args__ = (UniqueConstraint("workspace_id", "channel_id", name="uq_channel_override"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    channel_id: str = Field(max_length=64)
    sensitivity: str | None = Field(default=None, max_length=16)
    allow_listed: bool = Field(default=False)
    created_at: datetime = _when()


class MediaItem(SQLModel, table=True):
    """One distinct piece of media, by SHA-256 of its bytes: the verdict cache."""

    __tablename__ = "media_items"

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, unique=True)
    pdq: str | None = Field(default=None, max_length=64)
    pdq_quality: int | None = None
    mime: str = Field(default="", max_length=64)
    width: int | None = None
    height: int | None = None
    verdict: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    verdict_key: str | None = Field(default=None, max_length=400)  # detector names@versions
    signature: str | None = None  # detectors.hashes.ImageSignature.to_str(): banked on confirm
    seen_count: int = Field(default=1)
    first_seen_at: datetime = _when()
    last_seen_at: datetime = _when(index=True)


class Ticket(SQLModel, table=True):
    """A case for volunteers: one per platform message and media (unique key below)."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id", "channel_id", "message_id", "media_key", name="uq_ticket_message_media"
        ),
        Index("ix_ticket_ws_status", "workspace_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    kind: str = Field(
        default="detection", max_length=16
    )  # detection | help_request | report | copy
    channel_id: str = Field(max_length=64)
    message_id: str = Field(max_length=64)
    thread_id: str | None = Field(default=None, max_length=64)
    media_key: str = Field(default="", max_length=500)  # MediaRef.key, "" for the text itself
    author_id: str = Field(default="", max_length=64)
    media_item_id: int | None = Field(
        default=None, foreign_key="media_items.id", ondelete="SET NULL"
    )
    sha256: str | None = Field(default=None, max_length=64)
    status: str = Field(
        default="open", max_length=16
    )  # open | claimed | escalated | appealed | resolved
    severity: str = Field(default="REVIEW", max_length=16)
    priority: bool = Field(default=False)
    categories: list[str] = _json(list)
    scores: dict[str, float] = _json(dict)
    reasons: list[str] = _json(list)
    assignee_id: str | None = Field(default=None, max_length=64)
    resolution: str | None = Field(default=None, max_length=32)  # confirmed | false_positive
    resolution_note: str | None = None
    message_removed: bool = Field(default=False)
    card_channel_id: str | None = Field(default=None, max_length=64)
    card_message_id: str | None = Field(default=None, max_length=64)
    preview_message_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = _when(index=True)
    updated_at: datetime = _when()
    first_action_at: datetime | None = _when(nullable=True)
    resolved_at: datetime | None = _when(nullable=True)
    # Reports (bot/core/reports.py): due 48 hours after the first report; the safety channel
    # is alerted once when it nears (`due_alerted_at`).
    due_at: datetime | None = _when(nullable=True, index=True)
    due_alerted_at: datetime | None = _when(nullable=True)
    # What the sweeps for copies of this ticket's media found and did (bot/core/sweep.py).
    sweep: dict[str, Any] = _json(dict)


class TicketEvent(SQLModel, table=True):
    """The audit trail: every step on a ticket, refusals included, with its actor."""

    __tablename__ = "ticket_events"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(
        default=None, foreign_key="tickets.id", ondelete="CASCADE", index=True
    )
    workspace_id: int | None = Field(
        default=None, foreign_key="workspaces.id", ondelete="CASCADE", index=True
    )
    actor_id: str = Field(max_length=64)  # "veille" for the bot itself
    actor_name: str = Field(default="", max_length=200)
    action: str = Field(max_length=32)
    note: str | None = None
    data: dict[str, Any] = _json(dict)
    at: datetime = _when(index=True)


class Evidence(SQLModel, table=True):
    """Quarantined media: encrypted original and a blurred greyscale preview.
    For CRITICAL tickets both are None: hashes and metadata only."""

    __tablename__ = "evidence"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", ondelete="CASCADE", unique=True)
    sha256: str = Field(max_length=64)
    mime: str = Field(default="", max_length=64)
    ciphertext: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    preview_png: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = _when()
    purge_after: datetime | None = _when(nullable=True, index=True)
    purged_at: datetime | None = _when(nullable=True)


class HashEntry(SQLModel, table=True):
    """A hash in a named bank. source: confirmed (from tickets), imported, or allow. Owner:
    `workspace_id` (a community's confirmations, `/hashes add`, false positives) or None (the
    operator's lists, loaded with the `veille hashes` CLI). Each owner has its own banks: the
    same value in one name belongs to each community that added it."""

    __tablename__ = "hash_entries"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id", "bank", "kind", "value", name="uq_hash_owner_bank_kind_value"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    bank: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=16)  # pdq | md5 | sha256 | neardup
    value: str = Field(max_length=2048)
    quality: int | None = None
    source: str = Field(default="imported", max_length=16)
    added_by: str = Field(default="", max_length=200)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", ondelete="SET NULL")
    workspace_id: int | None = Field(default=None, foreign_key="workspaces.id", ondelete="CASCADE")
    note: str | None = None
    added_at: datetime = _when()
    # An operator list marked as child sexual abuse material (`veille hashes import
    # --child-abuse`): a match is CRITICAL on its own. Never set on a community's entries.
    child_abuse: bool = Field(default=False)


class SharedBank(SQLModel, table=True):
    """One community's bank published under a name other communities may subscribe to; the
    name stays with its publisher after revocation (no one else can take it over)."""

    __tablename__ = "shared_banks"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    bank: str = Field(default="confirmed", max_length=64)
    published_by: str = Field(default="", max_length=200)
    published_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)


class BankSubscription(SQLModel, table=True):
    """A community matching a shared bank's blocking entries (never its allow entries)."""

    __tablename__ = "bank_subscriptions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "shared_bank_id", name="uq_bank_subscription"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    shared_bank_id: int = Field(foreign_key="shared_banks.id", ondelete="CASCADE")
    subscribed_by: str = Field(default="", max_length=200)
    subscribed_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)


class OutboxAction(SQLModel, table=True):
    """A platform action recorded before it runs; retried with backoff until done or dead."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=300, unique=True)
    workspace_id: int | None = Field(default=None, foreign_key="workspaces.id", ondelete="CASCADE")
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", ondelete="CASCADE")
    platform: str = Field(max_length=16)
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = _json(dict)
    status: str = Field(default="pending", max_length=16)  # pending | done | dead
    attempts: int = Field(default=0)
    last_error: str | None = None
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = _when()
    next_attempt_at: datetime = _when()
    # When a try of a card post began (bot/core/outbox.py): set again and still pending means a
    # try began and never finished (a crash, a lost answer), so the post may already exist.
    started_at: datetime | None = _when(nullable=True)
    done_at: datetime | None = _when(nullable=True)


class InboxEvent(SQLModel, table=True):
    """A platform event recorded before any work on it (bot/core/inbox.py): replayed when its
    Decision was never committed (a crash mid-scan)."""

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_due", "status", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True)
    payload: dict[str, Any] = _json(dict)
    status: str = Field(default="pending", max_length=16)  # pending | done | dead
    attempts: int = Field(default=0)
    last_error: str | None = None
    received_at: datetime = _when()
    # Who is deciding it, until when (bot/core/inbox.py `claim`): a gateway records it with no
    # lease (any worker may claim it); a process that decides inline holds it from the start.
    claimed_by: str | None = Field(default=None, max_length=80)
    lease_until: datetime | None = _when(nullable=True)


class HashRemoval(SQLModel, table=True):
    """A hash entry deleted (a protection withdrawn, an entry removed by the CLI): other
    processes drop it from their in-memory bank (bot/core/bank_sync.py)."""

    __tablename__ = "hash_removals"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int
    removed_at: datetime = _when()


class OutboxLease(SQLModel, table=True):
    """Which process performs one queue of outbox actions (a ticket's, or one lone action),
    until when. Taken with a conditional UPDATE (or the primary key on first use), so any number
    of processes on one database perform each action once; a crashed holder's lease expires."""

    __tablename__ = "outbox_leases"

    queue: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=80)
    until: datetime = _when()


class Offender(SQLModel, table=True):
    """Repeat-offender counts per author."""

    __tablename__ = "offenders"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id", name="uq_offender"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    user_id: str = Field(max_length=64)
    count: int = Field(default=0)
    last_at: datetime = _when()


class ScanRecord(SQLModel, table=True):
    """One scanned media item or message in a workspace (digest statistics)."""

    __tablename__ = "scan_records"
    __table_args__ = (Index("ix_scan_ws_at", "workspace_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    channel_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # image | url | text
    severity: str = Field(default="NONE", max_length=16)
    categories: list[str] = _json(list)
    at: datetime = _when()


class DigestRun(SQLModel, table=True):
    """Exactly one digest per workspace and period."""

    __tablename__ = "digest_runs"
    __table_args__ = (UniqueConstraint("workspace_id", "period_start", name="uq_digest_period"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    period_start: datetime = _when()
    period_end: datetime = _when()
    status: str = Field(default="pending", max_length=16)  # pending | posted | failed
    message_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = _when()
    posted_at: datetime | None = _when(nullable=True)


class Report(SQLModel, table=True):
    """One person's report of a message (bot/core/reports.py). Several reports of one message
    join its one report ticket. The reporter is shown to moderators, never to the author."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("ticket_id", "reporter_id", name="uq_report_ticket_reporter"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", ondelete="CASCADE", index=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    reporter_id: str = Field(max_length=64)
    reporter_name: str = Field(default="", max_length=200)
    reason: str = Field(max_length=32)  # bot.core.reports.REASONS
    contact: str | None = Field(default=None, max_length=500)
    details: str | None = Field(default=None, max_length=2000)
    good_faith: bool = Field(default=False)
    locale: str = Field(default="en", max_length=8)  # the reporter's language, for their notices
    created_at: datetime = _when()
    due_at: datetime = _when()
    resolved_notified_at: datetime | None = _when(nullable=True)


class Appeal(SQLModel, table=True):
    """An author contesting a removal (DSA Art. 20): decided by a moderator other than the one
    who decided the ticket (`decided_by`, "veille" when the detectors did)."""

    __tablename__ = "appeals"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", ondelete="CASCADE", unique=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    author_id: str = Field(max_length=64)
    statement: str = Field(default="", max_length=2000)
    decided_by: str = Field(default="veille", max_length=64)
    status: str = Field(default="pending", max_length=16)  # pending | upheld | reversed
    outcome_by: str | None = Field(default=None, max_length=64)
    outcome_note: str | None = None
    locale: str = Field(default="en", max_length=8)
    created_at: datetime = _when()
    decided_at: datetime | None = _when(nullable=True)


class Protection(SQLModel, table=True):
    """A photo someone asked Veille to watch for (/protect). Only its hashes are kept, as
    hash entries of the bank `protected:<id>` owned by the workspace; never its bytes."""

    __tablename__ = "protections"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    owner_id: str = Field(max_length=64)
    label: str = Field(default="", max_length=100)
    entries: int = Field(default=0)
    created_at: datetime = _when()
    withdrawn_at: datetime | None = _when(nullable=True)


class Sighting(SQLModel, table=True):
    """Where a scanned image was posted: what a sweep for known copies searches. Kept for the
    workspace's retention; `removed_at` once Veille removed that message."""

    __tablename__ = "sightings"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id", "channel_id", "message_id", "media_key", name="uq_sighting"
        ),
        Index("ix_sighting_ws_seen", "workspace_id", "seen_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    channel_id: str = Field(max_length=64)
    message_id: str = Field(max_length=64)
    thread_id: str | None = Field(default=None, max_length=64)
    author_id: str = Field(default="", max_length=64)
    media_key: str = Field(default="", max_length=500)
    media_item_id: int | None = Field(
        default=None, foreign_key="media_items.id", ondelete="SET NULL"
    )
    sha256: str = Field(max_length=64, index=True)
    seen_at: datetime = _when()
    removed_at: datetime | None = _when(nullable=True)


class PendingSweep(SQLModel, table=True):
    """A sweep for copies of just-banked entries, recorded before it runs and deleted in the
    transaction that acts on what it found (bot/core/sweep.py): one a crash cut short is run
    again by another process once its lease lapses (bot/core/victims_service.py)."""

    __tablename__ = "pending_sweeps"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    entry_ids: list[int] = _json(list)
    cause: str = Field(max_length=32)
    source_ticket_id: int | None = None
    actor: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    attempts: int = Field(default=0)
    claimed_by: str | None = Field(default=None, max_length=80)
    lease_until: datetime | None = _when(nullable=True)
    created_at: datetime = _when()

"""Shared hash banks: a community publishes one of its banks under a name, others subscribe.

Both steps are opt-in and revocable; revoking keeps the row (and so the name, which no other
community can take over) with `revoked_at` set. A subscriber matches the publisher's blocking
entries of that bank, never its allow entries (bot.store.hash_repo, detectors.hashes.owner_in).
Like hash_repo, every function works in the caller's session and only flushes; the caller audits.
The core turns `subscribed_banks` into the detectors' BankScope (bot.core.banks.scope_of).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.store.models import BankSubscription, HashEntry, SharedBank

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class SharingError(ValueError):
    """A publish or subscribe step that cannot be done; `code` names why (for localisation)."""

    def __init__(self, code: str, name: str) -> None:
        super().__init__(f"{code}: {name}")
        self.code = code
        self.name = name


@dataclass(frozen=True)
class SharedBankView:
    name: str
    bank: str
    entries: int
    own: bool  # published by the community asking
    subscribed: bool


def check_name(name: str) -> str:
    name = name.strip().lower()
    if not NAME.match(name):
        raise SharingError("bad_name", name)
    return name


async def subscribed_banks(session: AsyncSession, workspace_id: int) -> frozenset[tuple[int, str]]:
    """The live shared banks a community is subscribed to, as (publishing community, bank)."""
    rows = await session.execute(
        select(SharedBank.workspace_id, SharedBank.bank)  # type: ignore[call-overload]
        .join(BankSubscription, col(BankSubscription.shared_bank_id) == col(SharedBank.id))
        .where(
            col(BankSubscription.workspace_id) == workspace_id,
            col(BankSubscription.revoked_at).is_(None),
            col(SharedBank.revoked_at).is_(None),
        )
    )
    return frozenset((int(w), str(b)) for w, b in rows.all())


async def _shared(session: AsyncSession, name: str) -> SharedBank | None:
    found = await session.execute(select(SharedBank).where(col(SharedBank.name) == name))
    return found.scalar_one_or_none()


async def publish(
    session: AsyncSession,
    workspace_id: int,
    name: str,
    *,
    bank: str = "confirmed",
    by: str,
    now: datetime,
) -> SharedBank:
    """Publish `bank` of `workspace_id` as `name` (or publish it again after a revocation)."""
    name = check_name(name)
    row = await _shared(session, name)
    if row is not None and row.workspace_id != workspace_id:
        raise SharingError("name_taken", name)
    if row is None:
        row = SharedBank(
            name=name, workspace_id=workspace_id, bank=bank, published_by=by[:200], published_at=now
        )
        session.add(row)
    else:
        row.bank, row.published_by, row.published_at, row.revoked_at = bank, by[:200], now, None
    await session.flush()
    return row


async def unpublish(
    session: AsyncSession, workspace_id: int, name: str, *, now: datetime
) -> SharedBank:
    """Stop sharing: subscribers no longer match the bank from their next message on."""
    row = await _shared(session, check_name(name))
    if row is None or row.workspace_id != workspace_id or row.revoked_at is not None:
        raise SharingError("not_published", name)
    row.revoked_at = now
    await session.flush()
    return row


async def subscribe(
    session: AsyncSession, workspace_id: int, name: str, *, by: str, now: datetime
) -> SharedBank:
    """Match the shared bank `name` in `workspace_id` from its next message on."""
    row = await _shared(session, check_name(name))
    if row is None or row.revoked_at is not None:
        raise SharingError("no_such_bank", name)
    if row.workspace_id == workspace_id:
        raise SharingError("own_bank", name)
    found = await session.execute(
        select(BankSubscription).where(
            col(BankSubscription.workspace_id) == workspace_id,
            col(BankSubscription.shared_bank_id) == row.id,
        )
    )
    sub = found.scalar_one_or_none()
    if sub is None:
        assert row.id is not None
        session.add(
            BankSubscription(
                workspace_id=workspace_id,
                shared_bank_id=row.id,
                subscribed_by=by[:200],
                subscribed_at=now,
            )
        )
    else:
        sub.subscribed_by, sub.subscribed_at, sub.revoked_at = by[:200], now, None
    await session.flush()
    return row


async def unsubscribe(
    session: AsyncSession, workspace_id: int, name: str, *, now: datetime
) -> SharedBank:
    row = await _shared(session, check_name(name))
    sub = None
    if row is not None:
        found = await session.execute(
            select(BankSubscription).where(
                col(BankSubscription.workspace_id) == workspace_id,
                col(BankSubscription.shared_bank_id) == row.id,
                col(BankSubscription.revoked_at).is_(None),
            )
        )
        sub = found.scalar_one_or_none()
    if row is None or sub is None:
        raise SharingError("not_subscribed", name)
    sub.revoked_at = now
    await session.flush()
    return row


async def list_shared(
    session: AsyncSession, workspace_id: int | None = None
) -> list[SharedBankView]:
    """Live shared banks with their blocking-entry counts, as `workspace_id` sees them."""
    banks = list(
        (
            await session.execute(
                select(SharedBank)
                .where(col(SharedBank.revoked_at).is_(None))
                .order_by(col(SharedBank.name))
            )
        ).scalars()
    )
    subscribed: set[int] = set()
    if workspace_id is not None:
        subscribed = set(
            (
                await session.execute(
                    select(BankSubscription.shared_bank_id).where(  # type: ignore[call-overload]
                        col(BankSubscription.workspace_id) == workspace_id,
                        col(BankSubscription.revoked_at).is_(None),
                    )
                )
            ).scalars()
        )
    out = []
    for row in banks:
        count = (
            await session.execute(
                select(func.count())
                .select_from(HashEntry)
                .where(
                    col(HashEntry.workspace_id) == row.workspace_id,
                    col(HashEntry.bank) == row.bank,
                    col(HashEntry.source) != "allow",
                )
            )
        ).scalar_one()
        out.append(
            SharedBankView(
                row.name,
                row.bank,
                int(count),
                row.workspace_id == workspace_id,
                row.id in subscribed,
            )
        )
    return out

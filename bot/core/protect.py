"""/protect: a person gives Veille, privately, a photo of themselves they fear will be shared
or altered. Veille computes its hashes and near-duplicate signature in memory and stores
**only those**, as hash entries of the bank `protected:<id>` owned by the workspace: no image
bytes in the database, the data directory, the logs or the platform. A later post of the
image or a near-copy matches that bank and is quarantined; a sweep of recent media runs at
once. The person can list and withdraw their protections (the entries are deleted).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.core import banks
from bot.core.audit import audit
from bot.core.errors import NotFound, VeilleError
from bot.core.i18n import t
from bot.core.types import Actor
from bot.store import hash_repo, repos, victims_repo
from bot.store.models import HashEntry, Protection, Workspace
from detectors.hashes import ImageSignature

MAX_PER_PERSON = 20


async def add(
    session: AsyncSession,
    ws: Workspace,
    actor: Actor,
    signature: ImageSignature,
    sha256: str,
    md5: str,
    label: str,
    now: datetime,
    lang: str,
) -> tuple[Protection, list[Any]]:
    """Bank one protected photo's hashes; returns the protection and the entries added."""
    assert ws.id is not None
    if len(await victims_repo.protections_of(session, ws.id, actor.user_id)) >= MAX_PER_PERSON:
        raise VeilleError(
            t("victims.protect.too_many", lang, limit=MAX_PER_PERSON), code="too_many"
        )
    protection = Protection(
        workspace_id=ws.id, owner_id=actor.user_id, label=label.strip()[:100], created_at=now
    )
    session.add(protection)
    await session.flush()
    assert protection.id is not None
    result = await banks.bank_protected(session, protection.id, signature, sha256, md5, ws.id)
    protection.entries = len(result.added)
    await repos.forget_verdicts(session, [sha256])
    audit(
        session,
        workspace_id=ws.id,
        ticket_id=None,
        actor=actor,
        action="protect",
        at=now,
        data={"protection": protection.id, "entries": protection.entries},
    )
    return protection, list(result.added)


async def withdraw(
    session: AsyncSession,
    ws: Workspace,
    actor: Actor,
    protection_id: int,
    now: datetime,
    lang: str,
) -> tuple[Protection, list[int]]:
    """Withdraw one of the actor's own protections; returns it and the removed entry ids."""
    assert ws.id is not None
    found = next(
        (
            p
            for p in await victims_repo.protections_of(session, ws.id, actor.user_id)
            if p.id == protection_id
        ),
        None,
    )
    if found is None:  # someone else's, withdrawn, or unknown: the same answer
        raise NotFound(t("victims.protect.not_found", lang, id=protection_id))
    ids = await _entry_ids(session, ws.id, victims_repo.protected_bank(protection_id))
    removed = await hash_repo.remove_entries(session, ids) if ids else []
    found.withdrawn_at = now
    audit(
        session,
        workspace_id=ws.id,
        ticket_id=None,
        actor=actor,
        action="unprotect",
        at=now,
        data={"protection": protection_id, "entries": len(removed)},
    )
    return found, removed


async def _entry_ids(session: AsyncSession, workspace_id: int, bank: str) -> list[int]:
    rows = await session.execute(
        select(HashEntry.id).where(  # type: ignore[call-overload]
            col(HashEntry.workspace_id) == workspace_id, col(HashEntry.bank) == bank
        )
    )
    return [int(i) for i in rows.scalars()]

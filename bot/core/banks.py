"""The core's side of hash banks: the detectors' types built from what the store keeps.

The store (bot/store/hash_repo.py, bank_sharing.py) holds rows and plain values and knows no
detector; detectors (detectors/hashes.py, hash_lists.py) know hashes and no database. This module
joins the two for the core: the in-memory HashBank from the stored entries, a community's
BankScope from its subscriptions, and an image's signature made bank entries: a ticket's images
banked (confirmed) or allow-listed (its evidence destroyed), a /protect photo banked.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import quarantine
from bot.store import bank_sharing, hash_repo, repos, victims_repo
from bot.store.models import HashEntry, MediaItem, Ticket
from detectors.base import BankScope
from detectors.hash_lists import SignatureLike, signature_hashes
from detectors.hashes import HashBank


async def load_bank(session: AsyncSession, **bank_options: int) -> HashBank:
    """Every stored entry in a new HashBank (`bank_options`: its thresholds)."""
    return HashBank(await hash_repo.entry_rows(session), **bank_options)


async def scope_of(session: AsyncSession, workspace_id: int) -> BankScope:
    """What a community's images are matched against: the operator's lists (always), its own
    entries and the live shared banks it is subscribed to."""
    return BankScope(workspace_id, await bank_sharing.subscribed_banks(session, workspace_id))


async def bank_confirmed(
    session: AsyncSession,
    signature: SignatureLike,
    sha256: str,
    ticket_id: int | None,
    added_by: str,
    workspace_id: int | None,
    *,
    bank: str = "confirmed",
    md5: str = "",
    source: str = "confirmed",
) -> hash_repo.AddResult:
    """Bank an image as fully as it can be: SHA-256 (and MD5), PDQ and its near-duplicate
    parts. A confirmed ticket's, or one an admin banks by hand (`source="imported"`: `/hashes
    add`; the `veille hashes add` CLI, which has no ticket and banks for the operator)."""
    return await hash_repo.add_entries(
        session,
        bank,
        signature_hashes(signature, sha256, md5),
        source=source,
        added_by=added_by,
        ticket_id=ticket_id,
        workspace_id=workspace_id,
    )


async def bank_protected(
    session: AsyncSession,
    protection_id: int,
    signature: SignatureLike,
    sha256: str,
    md5: str,
    workspace_id: int,
) -> hash_repo.AddResult:
    """Bank a /protect photo in the person's own bank, as fully as a confirmed image; who asked
    is on the Protection row, not the bank."""
    return await hash_repo.add_entries(
        session,
        victims_repo.protected_bank(protection_id),
        signature_hashes(signature, sha256, md5),
        source="protected",
        added_by="",
        workspace_id=workspace_id,
    )


async def allow_list(
    session: AsyncSession,
    signature: SignatureLike,
    sha256: str,
    added_by: str,
    *,
    bank: str = "allow",
    ticket_id: int | None = None,
    workspace_id: int | None = None,
    note: str | None = None,
    md5: str = "",
) -> hash_repo.AddResult:
    """Allow-list a false positive by its digests (SHA-256, and MD5 when given) and PDQ only: a
    moderator cleared this image, not every crop that shares a window with it, so no
    near-duplicate entry is stored."""
    return await hash_repo.add_entries(
        session,
        bank,
        signature_hashes(signature, sha256, md5, with_neardup=False),
        source="allow",
        added_by=added_by,
        ticket_id=ticket_id,
        workspace_id=workspace_id,
        note=note,
    )


async def _media_of(session: AsyncSession, ticket: Ticket) -> MediaItem | None:
    if ticket.media_item_id is None:
        return None
    return await session.get(MediaItem, ticket.media_item_id)


async def bank_ticket(session: AsyncSession, ticket: Ticket, added_by: str) -> list[HashEntry]:
    """Put a confirmed ticket's image — a report's: every image of the reported message — into
    the confirmed bank; the cached verdicts are dropped so the next post of the same bytes
    meets the bank. Returns the entries the live bank must learn."""
    if ticket.kind == "report":
        items = [
            (s.sha256, m)
            for s, m in await victims_repo.sightings_of_message(
                session, ticket.workspace_id, ticket.channel_id, ticket.message_id
            )
        ]
    else:
        items = [(ticket.sha256, await _media_of(session, ticket))] if ticket.sha256 else []
    added: list[HashEntry] = []
    for sha256, item in items:
        if item is None or not sha256:
            continue
        result = await bank_confirmed(
            session, item.signature, sha256, ticket.id, added_by, ticket.workspace_id
        )
        added.extend(result.added)
    await repos.forget_verdicts(session, [sha for sha, _ in items if sha])
    return added


async def allow_list_ticket(
    session: AsyncSession, ticket: Ticket, added_by: str, now: datetime, *, note: str | None = None
) -> list[HashEntry]:
    """Clear a ticket's image (a false positive, an appeal reversed): allow-listed, its cached
    verdict dropped so the next post of it meets the allow-list, and the evidence kept for the
    ticket destroyed. Returns the entries the live bank must learn."""
    assert ticket.id is not None
    allowed: list[HashEntry] = []
    item = await _media_of(session, ticket)
    if item is not None and ticket.sha256:
        result = await allow_list(
            session,
            item.signature,
            ticket.sha256,
            added_by,
            ticket_id=ticket.id,
            workspace_id=ticket.workspace_id,
            note=note,
        )
        await repos.forget_verdicts(session, [ticket.sha256])
        allowed = list(result.added)
    evidence = await quarantine.evidence_of(session, ticket.id)
    if evidence is not None:
        quarantine.destroy(evidence, now)
    return allowed

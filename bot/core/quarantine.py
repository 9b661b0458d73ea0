"""The quarantine store: encrypted evidence, blurred greyscale previews, reveal, release, purge.

CRITICAL evidence keeps no image bytes at all (no ciphertext, no preview): hashes and metadata
only, so Veille never stores what may be child sexual abuse material.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from PIL import Image, ImageFilter, ImageOps
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.core.crypto import EvidenceCipher
from bot.core.errors import EvidenceKeyMissing
from bot.store.models import Evidence

PREVIEW_SIDE = 192
# Evidence of a QUARANTINE where a minor may be present is kept no longer than this (or the
# workspace's own retention, when shorter): long enough to review, no longer than needed.
MINOR_SUSPECTED_RETENTION_DAYS = 7


def blurred_preview(image: Image.Image) -> bytes:
    """A small, strongly blurred greyscale PNG: enough to triage, not enough to see a body.
    Pixelate first (detail is gone for good), then blur the blocks away (blocking: use a thread)."""
    grey = ImageOps.grayscale(image.convert("RGB"))
    grey.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    w, h = grey.size
    tiny = grey.resize((max(1, w // 16), max(1, h // 16)), Image.Resampling.BILINEAR)
    blocky = tiny.resize((w, h), Image.Resampling.NEAREST)
    blurred = blocky.filter(ImageFilter.GaussianBlur(radius=max(4, max(w, h) // 12)))
    out = io.BytesIO()
    blurred.save(out, format="PNG")
    return out.getvalue()


def new_evidence(
    *,
    ticket_id: int,
    sha256: str,
    mime: str,
    data: bytes | None,
    preview_png: bytes | None,
    cipher: EvidenceCipher | None,
    critical: bool,
    created_at: datetime,
    retention_days: int,
) -> Evidence:
    """Evidence for a ticket. `critical` keeps no bytes. Without a cipher the original is
    refused (EvidenceKeyMissing): the caller still deletes and tickets, with hashes only."""
    purge_after = created_at + timedelta(days=max(retention_days, 0))
    if critical or data is None:
        return Evidence(
            ticket_id=ticket_id,
            sha256=sha256,
            mime=mime,
            created_at=created_at,
            purge_after=purge_after,
        )
    if cipher is None:
        raise EvidenceKeyMissing("VEILLE_SECRET_KEY is not set: evidence cannot be encrypted")
    return Evidence(
        ticket_id=ticket_id,
        sha256=sha256,
        mime=mime,
        ciphertext=cipher.encrypt(data),
        preview_png=preview_png,
        created_at=created_at,
        purge_after=purge_after,
    )


async def evidence_of(session: AsyncSession, ticket_id: int) -> Evidence | None:
    found = await session.execute(select(Evidence).where(col(Evidence.ticket_id) == ticket_id))
    return found.scalar_one_or_none()


def reveal(evidence: Evidence | None, cipher: EvidenceCipher | None) -> bytes | None:
    """The original bytes, or None when none were kept (CRITICAL, purged, released)."""
    if evidence is None or evidence.ciphertext is None:
        return None
    if cipher is None:
        raise EvidenceKeyMissing("VEILLE_SECRET_KEY is not set: evidence cannot be decrypted")
    return cipher.decrypt(evidence.ciphertext)


def destroy(evidence: Evidence, at: datetime) -> bool:
    """Drop the bytes (release after a false positive, retention, deletion); keep the hashes.
    Returns whether anything was dropped."""
    had = evidence.ciphertext is not None or evidence.preview_png is not None
    evidence.ciphertext = None
    evidence.preview_png = None
    if evidence.purged_at is None:
        evidence.purged_at = at
    return had


async def purge_expired(session: AsyncSession, now: datetime) -> list[int]:
    """Destroy evidence whose retention ran out; returns the tickets whose evidence lost bytes."""
    found = await session.execute(
        select(Evidence).where(col(Evidence.purge_after) <= now, col(Evidence.purged_at).is_(None))
    )
    return [evidence.ticket_id for evidence in found.scalars() if destroy(evidence, now)]

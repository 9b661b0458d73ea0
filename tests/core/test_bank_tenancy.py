"""Hash banks scoped to communities, on the real SQLite file: a second community can neither
unblock nor block anything in the first; shared banks are opt-in, audited and revocable; an
allow entry never clears an operator list's match or a CRITICAL verdict."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import select
from sqlmodel import col

from bot.core.errors import PermissionDenied, VeilleError
from bot.core.service import Veille
from bot.core.types import Actor, MediaRef, MessageEvent, Platform, SetupInput
from bot.core.verdict import Severity
from bot.store import hash_repo
from bot.store.models import HashEntry, TicketEvent
from detectors import hash_lists
from tests.core.conftest import ADMIN, MOD, WS, message, shapes_png
from tests.core.recording_gateway import RecordingGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")

OTHER = "guild-2"  # a stranger's server: its admin is admin there only
STRANGER = Actor("evil-1", "Eve", is_platform_admin=True)
OTHER_MEMBER = Actor("user-2", "Sam")


def reencoded(data: bytes, quality: int = 85) -> bytes:
    """The same picture as a JPEG: other bytes (no SHA-256 match), same looks (PDQ match)."""
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def other_message(message_id: str, image: bytes, gateway: RecordingGateway) -> MessageEvent:
    url = f"https://cdn.example/{OTHER}/{message_id}.png"
    gateway.files[url] = image
    ref = MediaRef(
        "attachment", url, media_id=f"{message_id}-0", filename="0.png", content_type="image/png"
    )
    return MessageEvent(
        Platform.DISCORD, OTHER, "general", message_id, Actor("poster-2", "Lou"), media=(ref,)
    )


@pytest.fixture
async def two(veille: Veille) -> Veille:
    await veille.save_setup(
        "discord",
        OTHER,
        STRANGER,
        SetupInput(safety_channel_id="their-safety", moderator_role_ids=("their-mod",)),
    )
    return veille


async def confirmed_in_first(veille: Veille, gateway: RecordingGateway, image: bytes) -> None:
    first = await veille.handle_message(message("a1", images=[image], gateway=gateway))
    assert first.severity == Severity.REVIEW
    await veille.ticket_action("discord", WS, MOD, "confirm", first.ticket_ids[0])


async def test_a_false_positive_in_another_community_leaves_the_first_blocking(
    two: Veille, gateway: RecordingGateway
) -> None:
    image = shapes_png(red=0.6, seed=11)
    await confirmed_in_first(two, gateway, image)
    copy = reencoded(image)
    # The stranger's server sees the copy by the models' scores only (the bank is not theirs)...
    theirs = await two.handle_message(other_message("b1", copy, gateway))
    assert theirs.severity == Severity.REVIEW and not theirs.delete
    # ...and rules it a false positive in their own server.
    await two.ticket_action("discord", OTHER, STRANGER, "false_positive", theirs.ticket_ids[0])
    async with two.store.read() as session:
        allow = list(
            (
                await session.execute(select(HashEntry).where(col(HashEntry.source) == "allow"))
            ).scalars()
        )
    assert allow and {e.workspace_id for e in allow} != {None}
    # The first community still blocks the original and the copy.
    for mid, data in (("a2", image), ("a3", copy), ("a4", reencoded(image, 70))):
        again = await two.handle_message(message(mid, images=[data], gateway=gateway))
        assert again.severity == Severity.QUARANTINE and again.delete, mid
    # In their own server the allow entry holds.
    assert (await two.handle_message(other_message("b2", copy, gateway))).severity == Severity.NONE


async def test_hashes_added_in_another_community_delete_nothing_in_the_first(
    two: Veille, gateway: RecordingGateway
) -> None:
    innocent = shapes_png(seed=21)
    reply = await two.add_hashes("discord", OTHER, STRANGER, [innocent], "confirmed")
    assert reply.ok
    mine = await two.handle_message(message("a1", images=[innocent], gateway=gateway))
    assert mine.severity == Severity.NONE and not mine.delete and mine.ticket_ids == []
    await two.retry_outbox()
    assert gateway.named("delete_message") == []
    theirs = await two.handle_message(other_message("b1", innocent, gateway))
    assert theirs.severity == Severity.QUARANTINE and theirs.delete


async def test_a_confirmation_in_another_community_blocks_nothing_in_the_first(
    two: Veille, gateway: RecordingGateway
) -> None:
    image = shapes_png(red=0.6, seed=31)
    theirs = await two.handle_message(other_message("b1", image, gateway))
    await two.ticket_action("discord", OTHER, STRANGER, "confirm", theirs.ticket_ids[0])
    # The same bytes (a verdict cache hit elsewhere) and a copy: review by scores only here.
    for mid, data in (("a1", image), ("a2", reencoded(image))):
        mine = await two.handle_message(message(mid, images=[data], gateway=gateway))
        assert mine.severity == Severity.REVIEW and not mine.delete, mid
    assert (
        await two.handle_message(other_message("b2", image, gateway))
    ).severity == Severity.QUARANTINE


async def test_a_shared_bank_is_opt_in_audited_and_revocable(
    two: Veille, gateway: RecordingGateway
) -> None:
    image = shapes_png(red=0.6, seed=41)
    await confirmed_in_first(two, gateway, image)
    copy = reencoded(image)
    assert (
        await two.handle_message(other_message("b1", copy, gateway))
    ).severity == Severity.REVIEW
    with pytest.raises(PermissionDenied):
        await two.share_bank("discord", WS, MOD, "publish", "ngo-list")  # admins only
    await two.share_bank("discord", WS, ADMIN, "publish", "ngo-list")
    with pytest.raises(VeilleError) as taken:
        await two.share_bank("discord", OTHER, STRANGER, "publish", "ngo-list")
    assert taken.value.code == "name_taken"
    with pytest.raises(PermissionDenied):
        await two.share_bank("discord", OTHER, OTHER_MEMBER, "subscribe", "ngo-list")
    reply = await two.share_bank("discord", OTHER, STRANGER, "subscribe", "ngo-list")
    assert "ngo-list" in (reply.text or "")
    listed = await two.shared_banks("discord", OTHER, STRANGER)
    assert [(b["name"], b["subscribed"], b["own"]) for b in listed.extras["banks"]] == [
        ("ngo-list", True, False)
    ]
    subscribed = await two.handle_message(other_message("b2", reencoded(image, 75), gateway))
    assert subscribed.severity == Severity.QUARANTINE and subscribed.delete
    # Revoked by the publisher: the subscriber no longer matches it; published again: it does.
    await two.share_bank("discord", WS, ADMIN, "unpublish", "ngo-list")
    after = await two.handle_message(other_message("b3", reencoded(image, 60), gateway))
    assert after.severity == Severity.REVIEW and not after.delete
    await two.share_bank("discord", WS, ADMIN, "publish", "ngo-list")
    assert (await two.handle_message(other_message("b4", reencoded(image, 65), gateway))).delete
    # Revoked by the subscriber.
    await two.share_bank("discord", OTHER, STRANGER, "unsubscribe", "ngo-list")
    assert not (await two.handle_message(other_message("b5", reencoded(image, 55), gateway))).delete
    # Subscribed again, the subscriber's own allow entry clears the shared bank for itself only.
    await two.share_bank("discord", OTHER, STRANGER, "subscribe", "ngo-list")
    await two.ticket_action("discord", OTHER, STRANGER, "false_positive", subscribed.ticket_ids[0])
    assert (
        await two.handle_message(other_message("b6", reencoded(image, 75), gateway))
    ).severity == Severity.NONE
    assert (await two.handle_message(message("a2", images=[copy], gateway=gateway))).delete
    async with two.store.read() as session:
        trail = [
            (e.workspace_id, e.action)
            for e in (
                await session.execute(
                    select(TicketEvent).where(col(TicketEvent.action).like("bank_%"))
                )
            ).scalars()
        ]
    assert [a for _, a in trail] == [
        "bank_publish",
        "bank_subscribe",
        "bank_unpublish",
        "bank_publish",
        "bank_unsubscribe",
        "bank_subscribe",
    ]
    assert len({w for w, _ in trail}) == 2


async def test_an_allow_entry_never_clears_an_operator_list_match(
    two: Veille, gateway: RecordingGateway
) -> None:
    from detectors.hashes import compute_signature

    image = shapes_png(red=0.6, seed=51)
    prepared_sig = compute_signature(Image.open(io.BytesIO(image)).convert("RGB"))
    async with two.store.write() as session:  # what `veille hashes add` does: operator-owned
        result = await hash_repo.add_entries(
            session, "ncii-programme", hash_lists.signature_hashes(prepared_sig), source="imported"
        )
    assert two.bank is not None
    two.bank.add(result.added)
    theirs = await two.handle_message(other_message("b1", reencoded(image), gateway))
    assert theirs.severity == Severity.QUARANTINE
    await two.ticket_action("discord", OTHER, STRANGER, "false_positive", theirs.ticket_ids[0])
    again = await two.handle_message(other_message("b2", reencoded(image), gateway))
    assert again.severity == Severity.QUARANTINE and again.delete


async def test_an_allow_entry_never_clears_a_critical_verdict() -> None:
    from detectors.base import MINOR_PRESENT, SEXUAL, Detection, HashMatch
    from detectors.fusion import fuse

    allow = HashMatch("allow", "pdq", 3, "allow", 1, owner="community")
    scores = {SEXUAL: 0.95, MINOR_PRESENT: 0.9}
    plain = fuse([("colour", "1", Detection(dict(scores)))])
    assert plain.severity == Severity.CRITICAL
    allowed = fuse(
        [("colour", "1", Detection(dict(scores))), ("hashes", "1", Detection(matches=[allow]))]
    )
    assert allowed.severity == Severity.CRITICAL
    review = fuse(
        [("colour", "1", Detection({SEXUAL: 0.6})), ("hashes", "1", Detection(matches=[allow]))]
    )
    assert review.severity == Severity.NONE

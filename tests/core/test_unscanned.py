"""No media passes unscanned silently: every attachment is scanned (not only the first 4), a
truncated JPEG is decoded as far as it goes, a 41-megapixel upscale is reduced while decoding,
and anything over a cap or still undecodable opens a REVIEW ticket "not scanned: why"."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.core import extract
from bot.core.service import Veille
from bot.core.types import SetupInput
from bot.core.verdict import Severity
from bot.media.decode import decode_image
from tests.core.conftest import ADMIN, MOD, WS, message, shapes_png
from tests.core.recording_gateway import RecordingGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


async def banked(veille: Veille, seed: int) -> bytes:
    image = shapes_png(seed=seed)
    reply = await veille.add_hashes("discord", WS, ADMIN, [image], "confirmed")
    assert reply.ok
    return image


async def test_a_banked_fifth_attachment_is_quarantined(
    veille: Veille, gateway: RecordingGateway
) -> None:
    harmful = await banked(veille, 61)
    images = [shapes_png(seed=100 + i) for i in range(4)] + [harmful]
    decision = await veille.handle_message(message("m1", images=images, gateway=gateway))
    assert decision.severity == Severity.QUARANTINE and decision.delete


async def test_a_truncated_jpeg_of_a_banked_image_is_quarantined(
    veille: Veille, gateway: RecordingGateway
) -> None:
    original = Image.open(io.BytesIO(await banked(veille, 62))).convert("RGB").resize((512, 512))
    data = jpeg(original)
    cut = data[: int(len(data) * 0.97)]  # the last 3 % missing
    decision = await veille.handle_message(message("m1", images=[cut], gateway=gateway))
    assert decision.severity == Severity.QUARANTINE and decision.delete


async def test_a_41_megapixel_upscale_of_a_banked_image_is_quarantined(
    veille: Veille, gateway: RecordingGateway
) -> None:
    original = Image.open(io.BytesIO(await banked(veille, 63))).convert("RGB")
    huge = jpeg(original.resize((7400, 5541), Image.Resampling.BILINEAR), quality=80)
    decoded = decode_image(huge, max_pixels=40_000_000)
    assert decoded.reduced_from == (7400, 5541) and decoded.width * decoded.height <= 40_000_000
    decision = await veille.handle_message(message("m1", images=[huge], gateway=gateway))
    assert decision.severity == Severity.QUARANTINE and decision.delete


async def test_over_the_cap_and_undecodable_items_open_not_scanned_tickets(
    veille: Veille, gateway: RecordingGateway
) -> None:
    images = [shapes_png(seed=200 + i, size=32) for i in range(extract.MAX_ATTACHED + 1)]
    decision = await veille.handle_message(message("m1", images=images, gateway=gateway))
    assert decision.severity == Severity.REVIEW and not decision.delete
    [tid] = decision.ticket_ids
    card = (await veille.show_ticket("discord", WS, MOD, tid)).card
    assert card is not None and "not scanned: over the cap of 20 attachments" in card.body
    cut_header = jpeg(Image.new("RGB", (64, 64), "white"))[:40]
    broken = await veille.handle_message(message("m2", images=[cut_header], gateway=gateway))
    assert broken.severity == Severity.REVIEW and len(broken.ticket_ids) == 1
    await veille.save_setup("discord", WS, ADMIN, SetupInput(locale="fr"))
    french = await veille.handle_message(
        message("m3", images=[b"\x89PNG\r\n\x1a\n"], gateway=gateway)
    )
    card = (await veille.show_ticket("discord", WS, MOD, french.ticket_ids[0])).card
    assert card is not None and "non analysé" in card.body


async def test_links_over_the_cap_are_ticketed_not_dropped(
    veille: Veille, gateway: RecordingGateway
) -> None:
    plan = extract.plan_media(" ".join(f"https://site{i}.example/p" for i in range(7)), ())
    assert len(plan.refs) == extract.MAX_LINKS
    assert [code for _, code in plan.skipped] == ["too_many_links", "too_many_links"]

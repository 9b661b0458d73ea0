"""bot.store.hash_repo on a real migrated SQLite file, with the values detectors.hash_lists makes
and the core's bot.core.banks around them: idempotent adds, list imports with line numbers,
banking a confirmed ticket's image, allow-lists, removal, loading the bank."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import ImageOps
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import banks
from bot.store import hash_repo
from bot.store.engine import session_factory, transaction
from detectors.base import ImageInput
from detectors.hash_lists import NewHash, read_hash_list
from detectors.hashes import HashBank, HashDetector, compute_signature
from tests.detectors.hash_images import crop, photo_like

PDQ_A = compute_signature(photo_like(20)).pdq
SHA = "5e" * 32
MD5 = "a1" * 16


async def test_add_is_idempotent_on_bank_kind_value(engine: AsyncEngine) -> None:
    factory = session_factory(engine)
    new = [NewHash("md5", MD5), NewHash("md5", MD5.upper()), NewHash("sha256", SHA)]
    async with transaction(factory) as session:
        first = await hash_repo.add_entries(session, "list", new, added_by="test")
    async with transaction(factory) as session:
        second = await hash_repo.add_entries(session, "list", new)
        other_bank = await hash_repo.add_entries(session, "other", new[:1])
    assert (len(first.added), first.duplicates) == (2, 1)
    assert (len(second.added), second.duplicates) == (0, 3)
    assert len(other_bank.added) == 1
    async with factory() as session:
        assert await hash_repo.bank_counts(session) == [
            ("list", "md5", "imported", 1),
            ("list", "sha256", "imported", 1),
            ("other", "md5", "imported", 1),
        ]


def test_new_hash_is_valid_by_construction() -> None:
    """The store takes values as they are, so a NewHash is normalised or refused when made."""
    assert NewHash("md5", f" {MD5.upper()} ").value == MD5
    with pytest.raises(ValueError, match="32 hex"):
        NewHash("md5", "a1" * 15)
    with pytest.raises(ValueError, match="unknown hash kind"):
        NewHash("crc32", "00")


async def test_import_threatexchange_csv_reports_invalid_lines(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = tmp_path / "te.csv"
    path.write_text(
        "# exported from a hash-sharing programme\n"
        "signal_type,signal_value,quality\n"
        f"pdq,{PDQ_A},100\n"
        f"HASH_MD5,{MD5}\n"
        f"photo_sha256,{SHA}\n"
        "pdq,not-a-hash\n"
        f"video_tmk,{SHA}\n"
        f"pdq,{PDQ_A}\n",
        "utf-8",
    )
    async with transaction(session_factory(engine)) as session:
        report = await hash_repo.import_hashes(
            session, read_hash_list(path), "te", "imported", "test"
        )
    assert (report.added, report.duplicates) == (3, 1)
    assert [line for line, _ in report.invalid] == [6, 7]
    assert "64 hex" in report.invalid[0][1] and "unsupported signal type" in report.invalid[1][1]


async def test_import_plain_lists(engine: AsyncEngine, tmp_path: Path) -> None:
    md5s = tmp_path / "md5.txt"
    md5s.write_text(f"{MD5}\n\n{'b2' * 16}\nnope\n", "utf-8")
    pdqs = tmp_path / "pdq.txt"
    pdqs.write_text(f"{PDQ_A}\n{SHA}\n", "utf-8")
    factory = session_factory(engine)
    async with transaction(factory) as session:
        plain = await hash_repo.import_hashes(session, read_hash_list(md5s), "plain")
        ambiguous = await hash_repo.import_hashes(session, read_hash_list(pdqs), "plain")
        forced = await hash_repo.import_hashes(session, read_hash_list(pdqs, "pdq"), "plain")
    assert plain.added == 2 and plain.invalid == [(4, plain.invalid[0][1])]
    assert ambiguous.added == 0 and [n for n, _ in ambiguous.invalid] == [1, 2]
    assert "--kind pdq|sha256" in ambiguous.invalid[0][1]
    assert forced.added == 2
    async with factory() as session:
        bank = await banks.load_bank(session)
    assert {m.kind for m in bank.match(compute_signature(photo_like(20)), md5=MD5)} == {
        "pdq",
        "md5",
    }


async def test_unreadable_import_raises_oserror(engine: AsyncEngine, tmp_path: Path) -> None:
    async with transaction(session_factory(engine)) as session:
        with pytest.raises(OSError):
            await hash_repo.import_hashes(session, read_hash_list(tmp_path / "missing.csv"), "x")


async def test_confirmed_ticket_image_is_found_again_after_crop(engine: AsyncEngine) -> None:
    image = photo_like(21)
    # What the core holds when a ticket is confirmed: the detector's extras for the image.
    [detection] = await HashDetector(HashBank()).detect([ImageInput(image, SHA, md5=MD5)])
    factory = session_factory(engine)
    async with transaction(factory) as session:
        banked = await banks.bank_confirmed(
            session, detection.extras, SHA, None, "moderator", None, md5=MD5
        )
        again = await banks.bank_confirmed(
            session, compute_signature(image).to_str(), SHA, None, "moderator", None, md5=MD5
        )
    assert again.added == [] and again.duplicates == 5
    assert sorted(e.kind for e in banked.added) == ["md5", "neardup", "neardup", "pdq", "sha256"]
    assert {e.source for e in banked.added} == {"confirmed"}
    async with factory() as session:
        bank = await banks.load_bank(session)
    matches = bank.match(compute_signature(crop(image, 0.8, 1, 1)))
    assert {m.kind for m in matches} == {"neardup"} and matches[0].bank == "confirmed"


async def test_allow_list_and_remove(engine: AsyncEngine) -> None:
    image = photo_like(22)
    sig = compute_signature(image)
    factory = session_factory(engine)
    async with transaction(factory) as session:
        allowed = await banks.allow_list(session, sig, SHA, "moderator", note="a poster")
    assert sorted(e.kind for e in allowed.added) == ["pdq", "sha256"]  # no crop windows
    async with factory() as session:
        bank = await banks.load_bank(session)
    assert {m.source for m in bank.match(compute_signature(ImageOps.mirror(image)))} == {"allow"}
    async with transaction(factory) as session:
        by_value = await hash_repo.remove_entries(session, bank="allow", value=SHA.upper())
        by_id = await hash_repo.remove_entries(session, [e.id for e in allowed.added if e.id])
        with pytest.raises(ValueError):
            await hash_repo.remove_entries(session)
    assert len(by_value) == 1 and len(by_id) == 1
    async with factory() as session:
        assert len(await banks.load_bank(session)) == 0

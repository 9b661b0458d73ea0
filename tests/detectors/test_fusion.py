"""Fusion of several detectors: each score against its own tier, two detectors agreeing on a
category block, and CRITICAL only on strong evidence. Detections are built for the test: fusion
is a pure function of them."""

from __future__ import annotations

from bot.core.verdict import Severity, Thresholds, Tier, Verdict
from detectors.base import KNOWN_CONTENT, MINOR_PRESENT, SEXUAL, Detection, HashMatch
from detectors.fusion import fuse

# CLIP uses the category tier (0.5 / 0.8); nsfw its own (0.6 / 0.9).
T = Thresholds()


def verdict(
    clip: dict[str, float] | None = None,
    nsfw: dict[str, float] | None = None,
    matches: list[HashMatch] | None = None,
) -> Verdict:
    found = []
    if clip is not None:
        found.append(("clip", "c1", Detection(dict(clip))))
    if nsfw is not None:
        found.append(("nsfw", "n1", Detection(dict(nsfw))))
    if matches:
        found.append(("hashes", "h1", Detection({KNOWN_CONTENT: 1.0}, matches=matches)))
    return fuse(found, T)


def test_each_detector_is_read_against_its_own_tier() -> None:
    assert T.review(SEXUAL, "nsfw") == 0.6 and T.review(SEXUAL, "clip") == 0.5
    # 0.55 passes CLIP's review tier but not nsfw's.
    assert verdict(clip={SEXUAL: 0.55}).severity == Severity.REVIEW
    assert verdict(nsfw={SEXUAL: 0.55}).severity == Severity.NONE
    assert verdict(nsfw={SEXUAL: 0.65}).severity == Severity.REVIEW


def test_block_needs_one_block_score_or_two_detectors_at_review() -> None:
    assert verdict(clip={SEXUAL: 0.85}).severity == Severity.QUARANTINE
    assert verdict(nsfw={SEXUAL: 0.85}).severity == Severity.REVIEW  # below nsfw's 0.9
    assert verdict(nsfw={SEXUAL: 0.95}).severity == Severity.QUARANTINE
    both = verdict(clip={SEXUAL: 0.6}, nsfw={SEXUAL: 0.7})
    assert both.severity == Severity.QUARANTINE
    # Each detector's own score is kept beside the fused one.
    assert both.detector_scores == {"clip": {SEXUAL: 0.6}, "nsfw": {SEXUAL: 0.7}}
    assert both.scores[SEXUAL] == 0.7


def test_minor_with_review_level_sexual_is_quarantine_without_preview() -> None:
    two_guesses = verdict(clip={SEXUAL: 0.6, MINOR_PRESENT: 0.7})
    assert two_guesses.severity == Severity.QUARANTINE and two_guesses.minor_suspected
    assert any("preview withheld" in r for r in two_guesses.reasons)


def test_critical_needs_block_level_sexual_evidence_with_a_minor() -> None:
    strong = verdict(clip={SEXUAL: 0.85, MINOR_PRESENT: 0.6})
    assert strong.severity == Severity.CRITICAL and not strong.minor_suspected
    agreeing = verdict(clip={SEXUAL: 0.6, MINOR_PRESENT: 0.6}, nsfw={SEXUAL: 0.7})
    assert agreeing.severity == Severity.CRITICAL  # two models agreeing is block-level
    assert verdict(clip={MINOR_PRESENT: 0.99}).severity == Severity.NONE  # never alone


def test_a_child_abuse_list_match_is_critical_an_ordinary_list_is_quarantine() -> None:
    listed = HashMatch("ncmec", "pdq", 4, source="imported", child_abuse=True)
    assert verdict(matches=[listed]).severity == Severity.CRITICAL
    ordinary = HashMatch("ngo", "pdq", 4, source="imported")
    assert verdict(matches=[ordinary]).severity == Severity.QUARANTINE


def test_verdicts_round_trip_with_detector_scores() -> None:
    original = verdict(clip={SEXUAL: 0.6, MINOR_PRESENT: 0.7}, nsfw={SEXUAL: 0.2})
    back = Verdict.from_json(original.to_json())
    assert back.detector_scores == original.detector_scores and back.minor_suspected
    old = {k: v for k, v in original.to_json().items() if k not in ("detectors", "minor_suspected")}
    assert Verdict.from_json(old).detector_scores == {}  # cached before the key existed


def test_calibrated_tiers_load_per_detector(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    path = tmp_path / "thresholds.json"
    path.write_text(
        json.dumps(
            {
                "M|P": {SEXUAL: {"review": 0.3, "block": 0.7}},
                "detector|nsfw": {SEXUAL: {"review": 0.4, "block": 0.8}},
            }
        )
    )
    loaded = Thresholds.load(path, "M", "P")
    assert loaded.tier(SEXUAL, "clip") == Tier(0.3, 0.7)
    assert loaded.tier(SEXUAL, "nsfw") == Tier(0.4, 0.8)
    assert Thresholds.load(path, "other", "P").tier(SEXUAL, "clip") == Tier(0.5, 0.8)

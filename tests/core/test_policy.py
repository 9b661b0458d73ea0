"""Pure parts of the core: policy, permissions, links in text, evidence encryption, previews."""

from __future__ import annotations

import io
from typing import cast

import pytest
from PIL import Image

from bot.core import policy
from bot.core.crypto import EvidenceCipher
from bot.core.extract import links_in, media_of
from bot.core.permissions import allowed, role_of
from bot.core.quarantine import blurred_preview
from bot.core.types import Actor, MediaRef, MessageEvent, Platform, Role
from bot.core.verdict import Severity, Thresholds, Verdict
from bot.store.models import Workspace
from detectors.base import HELP_REQUEST, SEXUAL, UNDRESS_REQUEST


def verdict(severity: Severity, *categories: str) -> Verdict:
    return Verdict(severity, list(categories), {c: 0.9 for c in categories}, [], ["why"], {})


def test_presets_move_both_tiers() -> None:
    base = Thresholds()
    strict = policy.thresholds_for(base, "strict")
    relaxed = policy.thresholds_for(base, "relaxed")
    assert strict.review(SEXUAL) < base.review(SEXUAL) < relaxed.review(SEXUAL)
    assert strict.block(SEXUAL) < base.block(SEXUAL) < relaxed.block(SEXUAL)
    override = policy.ChannelRule(sensitivity="strict")
    assert policy.effective_sensitivity("relaxed", override) == "strict"
    assert policy.effective_sensitivity("bogus", None) == "standard"


def test_decisions_per_severity() -> None:
    actions = {"delete": True, "notify": True, "timeout": True}
    review = policy.decide([verdict(Severity.REVIEW, SEXUAL)], None, actions, 0)
    assert review.severity == Severity.REVIEW and not review.delete
    quarantine = policy.decide([verdict(Severity.QUARANTINE, SEXUAL)], None, actions, 1)
    assert quarantine.delete and quarantine.notify_author and not quarantine.timeout_author
    repeat = policy.decide(
        [verdict(Severity.QUARANTINE, SEXUAL)], None, actions, policy.REPEAT_LIMIT
    )
    assert repeat.timeout_author
    kept = policy.decide(
        [verdict(Severity.QUARANTINE, SEXUAL)], None, {"delete": False, "notify": False}, 1
    )
    assert not kept.delete and not kept.notify_author
    critical = policy.decide([verdict(Severity.CRITICAL, SEXUAL)], None, {"delete": False}, 1)
    assert critical.delete and critical.alert_admins and not critical.notify_author


def test_help_requests_are_never_punished() -> None:
    helped = policy.decide([], verdict(Severity.REVIEW, HELP_REQUEST), {"timeout": True}, 9)
    assert helped.help_request and not helped.delete and not helped.timeout_author
    both = verdict(Severity.QUARANTINE, HELP_REQUEST, UNDRESS_REQUEST)
    assert not policy.decide([], both, {}, 0).help_request


def test_exemptions() -> None:
    def event(author: Actor) -> MessageEvent:
        return MessageEvent(Platform.SLACK, "T1", "C1", "1.0", author)

    assert policy.exempt(event(Actor("b", is_bot=True)), [], None)
    assert not policy.exempt(event(Actor("g", is_bot=True, is_ai_app=True)), [], None)
    assert policy.exempt(event(Actor("u", role_ids=frozenset({"art"}))), ["art"], None)
    assert policy.exempt(event(Actor("u")), [], policy.ChannelRule(allow_listed=True))
    assert not policy.exempt(event(Actor("u")), ["art"], policy.ChannelRule(sensitivity="strict"))


def test_roles_come_from_the_wizard_choices() -> None:
    ws = Workspace(
        platform="slack",
        external_id="T1",
        moderator_role_ids=["S-mods"],
        moderator_user_ids=["U7"],
        admin_role_ids=["S-admins"],
    )
    assert role_of(ws, Actor("U1")) == Role.MEMBER
    assert role_of(ws, Actor("U7")) == Role.MODERATOR
    assert role_of(ws, Actor("U2", role_ids=frozenset({"S-mods"}))) == Role.MODERATOR
    assert role_of(ws, Actor("U3", role_ids=frozenset({"S-admins"}))) == Role.ADMIN
    assert role_of(ws, Actor("U4", is_platform_admin=True)) == Role.ADMIN
    assert allowed(ws, Actor("U7"), "claim") and not allowed(ws, Actor("U7"), "setup")


def test_links_are_found_in_chat_markup() -> None:
    text = "look <https://a.example/x.png|pic> and https://b.example/page), again https://b.example/page"
    assert links_in(text) == ["https://a.example/x.png", "https://b.example/page"]
    attached = MediaRef("attachment", "https://cdn/1.png", media_id="1")
    refs = media_of("see https://cdn/1.png https://c.example/y", (attached,))
    assert [r.kind for r in refs] == ["attachment", "link"]


def test_evidence_encryption_is_keyed_and_authenticated() -> None:
    cipher = EvidenceCipher("one secret")
    token = cipher.encrypt(b"evidence")
    assert b"evidence" not in token and cipher.decrypt(token) == b"evidence"
    with pytest.raises(ValueError):
        EvidenceCipher("another secret").decrypt(token)


def test_previews_are_small_greyscale_and_lose_detail() -> None:
    image = Image.new("RGB", (400, 300), (255, 0, 0))
    for x in range(0, 400, 4):  # fine stripes: detail a preview must not keep
        image.paste((0, 0, 255), (x, 0, x + 2, 300))
    preview = Image.open(io.BytesIO(blurred_preview(image)))
    assert preview.mode == "L" and max(preview.size) <= 192
    low, high = cast(tuple[int, int], preview.getextrema())  # "L" mode: one band
    assert high - low < 40  # the stripes are blurred away

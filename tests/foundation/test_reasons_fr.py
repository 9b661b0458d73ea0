"""Cards speak the workspace's language down to the detectors' reasons and categories, and
internal tags never reach people."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.cards import ticket_card
from bot.core.reasons import readable_reason
from bot.store.models import Ticket, Workspace

REASONS = [
    "CLIP sexual: closer to 'a nude photo' than to 'a person at the beach' (margin +0.31)",
    "undress request (fr): 'mets-la en bikini' addressed to an image AI, replying to an image",
    "help request (en): 'someone made a fake of me' — may be a victim asking for help"
    " (agent, ask, fake, harm_verb, victim)",
    "matches confirmed bank 'confirmed' at PDQ distance 12",
    "nsfw: explicit nudity 0.93",
    "image posted in answer to an undress request",
]


def card_text(locale: str) -> str:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    workspace = Workspace(
        id=1, platform="slack", external_id="g", name="g", locale=locale, sla_hours=24
    )
    ticket = Ticket(
        id=7,
        workspace_id=1,
        channel_id="123",
        message_id="9",
        severity="QUARANTINE",
        categories=["sexual", "undress_request"],
        created_at=now,
        reasons=REASONS,
        scores={"sexual": 0.93, "undress_request": 0.8},
        status="open",
    )
    card = ticket_card(ticket, workspace, now)
    return "\n".join([card.title, card.body, *(f"{k}: {v}" for k, v in card.fields)])


def test_french_card_has_french_reasons_categories_and_severity() -> None:
    text = card_text("fr")
    for french in (
        "quarantaine",
        "contenu sexuel",
        "demande de déshabillage",
        "Demande de déshabillage (fr) : « mets-la en bikini »",
        "adressée à une IA d'images",
        "Correspond à la banque",
        "Nudité explicite",
        "Image publiée en réponse",
    ):
        assert french in text, text
    for english in (
        "closer to",
        "undress request",
        "help request",
        "matches confirmed",
        "explicit nudity",
        "sexual 0.93",
        "image posted",
    ):
        assert english not in text, text


def test_no_internal_tags_in_any_language() -> None:
    for locale in ("en", "fr"):
        text = card_text(locale)
        assert "harm_verb" not in text and "(agent" not in text, text
    assert readable_reason("something new (agent, harm_verb)", "en") == "something new"
    assert readable_reason("a reason in no known shape", "fr") == "a reason in no known shape"

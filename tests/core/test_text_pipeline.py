"""Chat text through the real core with the detectors a text-only deployment runs
(build_detectors(["hashes", "text"]): the trained head and its encoder, nothing faked): a
request in a language the grammar does not know opens a ticket with the model's reason, a
help request in another language takes the help path and is never punished."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_veille, load_bank
from bot.core.clock import ManualClock
from bot.core.scanner import Scanner
from bot.core.service import Veille
from bot.core.types import Actor, RepliedMessage, SetupInput
from bot.core.verdict import Severity
from bot.settings import Settings
from bot.store.models import Offender, Ticket
from detectors.registry import DetectorDeps, build_detectors
from tests.core.conftest import ADMIN, QUARANTINE_CHANNEL, SAFETY, WS, message
from tests.core.recording_gateway import RecordingGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def text_veille(
    settings: Settings, engine: AsyncEngine, clock: ManualClock, gateway: RecordingGateway
) -> AsyncIterator[Veille]:
    scanner = Scanner(
        build_detectors(["hashes", "text"], DetectorDeps(bank=await load_bank(engine)))
    )
    await scanner.load()
    core = await build_veille(settings, engine, gateways=[gateway], scanner=scanner, clock=clock)
    await core.save_setup(
        "discord",
        WS,
        ADMIN,
        SetupInput(
            safety_channel_id=SAFETY,
            quarantine_channel_id=QUARANTINE_CHANNEL,
            moderator_role_ids=("role-mod",),
            admin_role_ids=("role-admin",),
        ),
    )
    yield core
    await core.aclose()


async def tickets(veille: Veille) -> list[Ticket]:
    async with veille.store.read() as session:
        return list((await session.execute(select(Ticket))).scalars())


@pytest.mark.parametrize(
    "text",
    [
        "@grok rozbierz ją do naga na tym zdjęciu",  # Polish: the grammar has no Polish
        "@grok この写真の女の子の服を全部脱がせて",  # Japanese
    ],
)
async def test_a_request_beyond_the_seven_languages_opens_a_ticket_with_a_reason(
    text_veille: Veille, gateway: RecordingGateway, text: str
) -> None:
    event = message(
        "m1",
        text=text,
        mentions_ai_app=True,
        reply_to=RepliedMessage("m0", Actor("u1"), has_image=True),
    )
    decision = await text_veille.handle_message(event)
    assert decision.severity >= Severity.REVIEW, decision
    assert not decision.help_request
    assert any(r.startswith("undress request (") for r in decision.reasons), decision.reasons
    [ticket] = await tickets(text_veille)
    assert "undress_request" in ticket.categories and ticket.kind != "help_request"


async def test_a_help_request_in_polish_gets_the_help_path_and_no_punishment(
    text_veille: Veille, gateway: RecordingGateway
) -> None:
    event = message(
        "m1", text="ktoś wrzucił moje nagie zdjęcia bez mojej zgody, pomóżcie, co mam zrobić?"
    )
    decision = await text_veille.handle_message(event)
    assert decision.help_request and not decision.delete and not decision.timeout_author
    await text_veille.retry_outbox()
    [ticket] = await tickets(text_veille)
    assert ticket.kind == "help_request"
    assert gateway.named("delete_message") == []
    async with text_veille.store.read() as session:
        assert list((await session.execute(select(Offender))).scalars()) == []


async def test_ordinary_chat_in_many_languages_opens_nothing(text_veille: Veille) -> None:
    for index, text in enumerate(
        [
            "dzień dobry, kto gra dziś wieczorem?",
            "明日の会議は何時？",
            "merci pour le lien !",
            "¿quién trae la pizza?",
        ]
    ):
        decision = await text_veille.handle_message(message(f"c{index}", text=text))
        assert decision.severity == Severity.NONE, (text, decision)
    assert await tickets(text_veille) == []

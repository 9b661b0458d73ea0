"""The core under test: a real migrated SQLite file, the real hash and text detectors, and a
colour "model" built for the tests (red reads as sexual, blue as a minor), driven through the
recording Gateway with a ManualClock."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_veille
from bot.core.clock import ManualClock
from bot.core.scanner import Scanner
from bot.core.service import Veille
from bot.core.types import Actor, MediaRef, MessageEvent, Platform, SetupInput
from bot.settings import Settings
from detectors.base import MINOR_PRESENT, SEXUAL, Detection, Detector, ImageInput
from detectors.hashes import HashBank, HashDetector
from detectors.text_request import UndressRequestDetector
from tests.core.recording_gateway import RecordingGateway

WS = "guild-1"
SAFETY = "safety"
QUARANTINE_CHANNEL = "quarantine"
ADMIN = Actor("admin-1", "Ada", is_platform_admin=True)
MOD = Actor("mod-1", "Mo", role_ids=frozenset({"role-mod"}))
MEMBER = Actor("user-9", "Max")


class ColourModel:
    """A detector built for the tests: the share of red pixels is the `sexual` score and four
    times the share of blue pixels (capped at 1) the `minor_present` score, so that one picture
    can carry block-level sexual and review-level minor scores. It records its batch sizes."""

    name = "colour"
    version = "1"
    kind: Literal["image", "text"] = "image"

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.broken = False  # set to make detect() crash like a model out of memory

    async def load(self) -> None:
        return None

    async def detect(self, items: Sequence[ImageInput]) -> list[Detection]:  # type: ignore[override]
        if self.broken:
            raise RuntimeError("model crashed")
        self.batches.append(len(items))
        out = []
        for item in items:
            rgb = np.asarray(item.image.convert("RGB")).astype(int)
            red = ((rgb[..., 0] > 180) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)).mean()
            blue = ((rgb[..., 2] > 180) & (rgb[..., 0] < 80) & (rgb[..., 1] < 80)).mean()
            out.append(
                Detection(
                    {SEXUAL: float(red), MINOR_PRESENT: min(1.0, 4 * float(blue))},
                    [f"red {red:.2f}"] if red > 0.3 else [],
                )
            )
        return out


def shapes_png(red: float = 0.0, blue: float = 0.0, seed: int = 0, size: int = 128) -> bytes:
    """A generated picture: the left `red` share of the width red, the next `blue` share blue,
    the rest grey with a few shapes (seeded) so that PDQ has structure to hash."""
    image = Image.new("RGB", (size, size), (200, 200, 200))
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(seed)
    for _ in range(12):
        x, y = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(6, 24))
        shade = tuple(int(v) for v in rng.integers(0, 160, 3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=shade)
    red_w = int(size * red)
    blue_w = int(size * blue)
    if red_w:
        draw.rectangle((0, 0, red_w - 1, size), fill=(230, 20, 20))
        for i in range(0, red_w, 16):  # stripes keep PDQ quality up inside the red part
            draw.line((i, 0, i, size), fill=(200, 0, 0), width=3)
    if blue_w:
        draw.rectangle((red_w, 0, red_w + blue_w - 1, size), fill=(20, 20, 230))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def message(
    message_id: str,
    *,
    images: Sequence[bytes] = (),
    text: str = "",
    author: Actor | None = None,
    channel: str = "general",
    gateway: RecordingGateway | None = None,
    **extra: object,
) -> MessageEvent:
    """A Discord message with attachments served by `gateway`."""
    refs = []
    for index, data in enumerate(images):
        url = f"https://cdn.example/{message_id}/{index}.png"
        if gateway is not None:
            gateway.files[url] = data
        refs.append(
            MediaRef(
                "attachment",
                url,
                media_id=f"{message_id}-{index}",
                filename=f"{index}.png",
                content_type="image/png",
            )
        )
    return MessageEvent(
        Platform.DISCORD,
        WS,
        channel,
        message_id,
        author or Actor("poster-1", "Pat"),
        text=text,
        media=tuple(refs),
        **extra,
    )  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def gateway() -> RecordingGateway:
    return RecordingGateway()


@pytest.fixture
def colour() -> ColourModel:
    return ColourModel()


async def make_veille(
    settings: Settings,
    engine: AsyncEngine,
    clock: ManualClock,
    gateway: RecordingGateway,
    colour: ColourModel,
) -> Veille:
    """A Veille as bot.app builds it, with the test's detectors and the bank from the database."""
    from bot.app import load_bank

    bank: HashBank = await load_bank(engine)
    detectors: list[Detector] = [colour, HashDetector(bank), UndressRequestDetector()]  # type: ignore[list-item]
    scanner = Scanner(detectors)
    await scanner.load()
    return await build_veille(settings, engine, gateways=[gateway], scanner=scanner, clock=clock)


@pytest.fixture
async def veille(
    settings: Settings,
    engine: AsyncEngine,
    clock: ManualClock,
    gateway: RecordingGateway,
    colour: ColourModel,
) -> AsyncIterator[Veille]:
    core = await make_veille(settings, engine, clock, gateway, colour)
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

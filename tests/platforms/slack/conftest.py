"""Fixtures for the Slack adapter: the local fake Slack and settings pointing at it."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image, ImageDraw
from pydantic import SecretStr

from bot.settings import Settings, load_settings
from tests.fakes.slack_server import BOT_USER_ID, FakeSlack

SIGNING_SECRET = "test-signing-secret"


@pytest.fixture(scope="session")
async def tiny_clip() -> Any:
    """The tiny CLIP detector (tests/tiny_clip.py), loaded once: red circles score `sexual`."""
    from bot.core.suite import detector_deps
    from detectors.registry import build_detectors
    from tests.tiny_clip import tiny_clip_settings

    config = load_settings(
        _env_file=None, detectors="clip", clip_backend="torch", **tiny_clip_settings()
    )
    detector = build_detectors(["clip"], detector_deps(config, ["clip"]))[0]
    await detector.load()
    return detector


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack()
    await slack.start()
    slack.add_user("UADMIN", admin=True, name="Ada")
    slack.add_user("UMOD", name="Mo")
    slack.add_user("UMEMBER", name="Mel")
    slack.add_user("UFR", name="Fleur", locale="fr-FR")
    slack.usergroups["SMODS"] = ["UMOD"]
    slack.channels["CSAFE"] = {BOT_USER_ID, "UMOD"}
    slack.channels["CQUAR"] = {BOT_USER_ID}
    slack.channels["CGEN"] = {BOT_USER_ID, "UMEMBER", "UMOD"}
    slack.channels["COUT"] = {"UMEMBER"}
    yield slack
    await slack.stop()


def slack_settings(
    base: Settings, slack: FakeSlack, *, mode: str = "socket", admin: bool = True
) -> Settings:
    """`base` pointed at the fake Slack, with or without the admin user token."""
    # model_copy does not validate: secrets must be wrapped by hand.
    return base.model_copy(
        update={
            "slack_bot_token": SecretStr(slack.bot_token),
            "slack_app_token": SecretStr(slack.app_token),
            "slack_signing_secret": SecretStr(SIGNING_SECRET),
            "slack_admin_token": SecretStr(slack.admin_token) if admin else None,
            "slack_api_url": slack.base_url + "api/",
            "slack_mode": mode,
            "fetch_allow_loopback": True,
            "slack_reveal_ttl_s": 0.3,
        }
    )


def shape_png(seed: int, size: int = 96) -> bytes:
    """A generated image of a few shapes; different seeds give visibly different images."""
    image = Image.new("RGB", (size, size), (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256))
    draw = ImageDraw.Draw(image)
    for i in range(4):
        x, y = (seed * 13 + i * 29) % size, (seed * 7 + i * 41) % size
        draw.ellipse(
            (x, y, x + size // 3, y + size // 4), fill=((i * 80) % 256, 255 - seed % 256, i * 60)
        )
        draw.rectangle(
            (y // 2, x // 2, y // 2 + size // 5, x // 2 + size // 3), fill=(255, i * 70, seed % 256)
        )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()

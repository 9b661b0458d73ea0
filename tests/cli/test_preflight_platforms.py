"""The platform registry as `veille run`, `doctor` and the log see it: each loops over
bot.platforms.PLATFORMS, so a third platform registered there is started, checked before the
start, checked by doctor and redacted, with no other file naming it."""

from __future__ import annotations

import importlib
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator

import aiohttp
import pytest
from pydantic import SecretStr

import bot.platforms as registry
from bot.cli.doctor import run_checks
from bot.cli.failures import Failure, explain
from bot.cli.preflight import check_platforms
from bot.log import QuietNotices, RedactingFilter, secrets_of
from bot.platforms.base import Check, PlatformDescriptor, Refusal
from bot.settings import Settings

TOKEN = "matrix-secret-token-123456"
ASKED: list[str] = []


class MatrixRefused(Exception):
    """What a Matrix client library might raise for a rejected token."""


async def _preflight(settings: Settings, session: aiohttp.ClientSession) -> None:
    ASKED.append("preflight")
    raise Refusal("Matrix refused MATRIX_TOKEN: make a new one.", 2)


async def _online(settings: Settings, session: aiohttp.ClientSession, locale: str) -> list[Check]:
    return [Check("matrix token", "ok", "logged in as @veille:example.org")]


MATRIX = PlatformDescriptor(
    name="matrix",
    title="Matrix",
    runner="bot.platforms.matrix.runner",
    configured=lambda settings: True,
    secrets=lambda settings: (SecretStr(TOKEN), None),
    explain_failure=lambda exc, locale: (
        "Matrix refused the token." if isinstance(exc, MatrixRefused) else None
    ),
    doctor_checks=lambda settings, locale: [Check("matrix homeserver", "warn", "no homeserver")],
    online_checks=_online,
    preflight=_preflight,
    quiet_loggers=("matrix.sync",),
    quiet_notices=(("matrix", "e2e not supported"),),
)


@pytest.fixture
def third(monkeypatch: pytest.MonkeyPatch) -> Iterator[PlatformDescriptor]:
    """Matrix registered beside Discord and Slack, as its one line in bot/platforms would."""
    monkeypatch.setattr(registry, "PLATFORMS", (*registry.PLATFORMS, MATRIX))
    ASKED.clear()
    yield MATRIX


def test_each_platform_has_a_unique_name_and_a_runner_with_start() -> None:
    names = [platform.name for platform in registry.PLATFORMS]
    assert names == ["discord", "slack"] and len(set(names)) == len(names)
    for platform in registry.PLATFORMS:
        assert platform.runner == f"bot.platforms.{platform.name}.runner"
        assert callable(importlib.import_module(platform.runner).start)
        assert platform.init_chosen_by in {q.variable for q in platform.init_questions}


def test_reading_the_registry_imports_no_platform_library() -> None:
    """The CLI reads the descriptors at every start: discord.py and Bolt load only to run."""
    code = (
        "import sys, bot.platforms, bot.log, bot.cli.doctor; "
        "print(sorted(m for m in ('discord', 'slack_bolt', 'slack_sdk') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_a_third_platform_is_checked_before_the_start(
    settings: Settings, third: PlatformDescriptor
) -> None:
    with pytest.raises(Failure) as caught:
        await check_platforms(settings)
    assert ASKED == ["preflight"]
    assert caught.value.code == 2 and "MATRIX_TOKEN" in caught.value.message


async def test_a_platform_serving_http_gets_its_port_checked(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    ASKED.clear()
    listening = replace(MATRIX, listens_on_http_port=lambda s: True)
    monkeypatch.setattr(registry, "PLATFORMS", (listening,))
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        busy = settings.model_copy(update={"http_port": holder.getsockname()[1]})
        with pytest.raises(Failure) as caught:
            await check_platforms(busy)
    assert ASKED == [] and caught.value.code == 1  # the port first: nothing was dialled


async def test_doctor_lists_a_third_platform_and_its_checks(
    settings: Settings, third: PlatformDescriptor
) -> None:
    checks = {c.name: c for c in await run_checks(settings, with_model=False, online=True)}
    assert checks["platforms"].status == "ok" and checks["platforms"].detail == "Matrix"
    assert checks["matrix homeserver"].status == "warn"
    assert checks["matrix token"].detail == "logged in as @veille:example.org"


def test_a_third_platform_s_refused_token_is_explained(third: PlatformDescriptor) -> None:
    try:
        try:
            raise MatrixRefused("401")
        except MatrixRefused as inner:
            raise RuntimeError("could not start") from inner
    except RuntimeError as exc:
        assert explain(exc, "en").message == "Matrix refused the token."


def test_a_third_platform_s_secrets_and_notices_stay_out_of_the_log(
    settings: Settings, third: PlatformDescriptor
) -> None:
    assert TOKEN in secrets_of(settings)
    assert RedactingFilter(secrets_of(settings)).redact(f"token={TOKEN}") == "token=[redacted]"
    notice = logging.LogRecord(
        "matrix.client", logging.WARNING, __file__, 1, "e2e not supported here", None, None
    )
    assert QuietNotices().filter(notice) is False
    assert QuietNotices(debug=True).filter(notice) is True


def test_the_registered_platforms_secrets_are_redacted(settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "discord_token": SecretStr("discord-token-abcdef"),
            "slack_bot_token": SecretStr("xoxb-bot-abcdef"),
            "slack_admin_token": SecretStr("xoxp-admin-abcdef"),
        }
    )
    assert set(secrets_of(configured)) == {
        "test-secret-key-not-for-production",
        "discord-token-abcdef",
        "xoxb-bot-abcdef",
        "xoxp-admin-abcdef",
    }

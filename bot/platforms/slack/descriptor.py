"""Slack as bot.app and the CLI see it: configured by SLACK_BOT_TOKEN plus SLACK_APP_TOKEN
(Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode, on VEILLE_HTTP_PORT), optionally
SLACK_ADMIN_TOKEN for deletions; or, installable in many workspaces, by SLACK_CLIENT_ID and
SLACK_CLIENT_SECRET (OAuth, HTTP mode); started by runner.py; its tokens checked with auth.test
and apps.connections.open by `doctor` and `run`.

Imports nothing of Bolt or slack_sdk: the CLI reads this at every start (bot/platforms/base.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from bot.core.i18n import t
from bot.platforms.base import Check, InitQuestion, PlatformDescriptor, Refusal

if TYPE_CHECKING:
    import aiohttp
    from pydantic import SecretStr

    from bot.settings import Settings

DEFAULT_API = "https://slack.com/api/"
SLACK_ONLY = ("SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "VEILLE_SLACK_MODE")


def _configured(settings: Settings) -> bool:
    return settings.slack_configured


def _secrets(settings: Settings) -> tuple[SecretStr | None, ...]:
    return (
        settings.slack_bot_token,
        settings.slack_app_token,
        settings.slack_signing_secret,
        settings.slack_admin_token,
        settings.slack_client_secret,
    )


def _missing(settings: Settings) -> str | None:
    """The variable a bot token still needs in this mode, when it is not set."""
    if settings.slack_bot_token is None or settings.slack_configured:
        return None
    return "SLACK_APP_TOKEN" if settings.slack_mode == "socket" else "SLACK_SIGNING_SECRET"


def incomplete(settings: Settings, locale: str) -> str | None:
    missing = _missing(settings)
    if missing is None:
        return None
    return t("failure.slack_incomplete", locale, missing=missing, mode=settings.slack_mode)


_TOKEN_REFUSED = ("invalid_auth", "not_authed", "account_inactive", "token_revoked")


def explain_failure(exc: BaseException, locale: str) -> str | None:
    """slack_sdk's SlackApiError carries Slack's answer: a refused token says which error."""
    response = getattr(exc, "response", None)
    try:
        error = str(response["error"]) if response is not None else None
    except (KeyError, TypeError):
        return None
    return t("failure.slack_token", locale, error=error) if error in _TOKEN_REFUSED else None


def doctor_checks(settings: Settings, locale: str) -> list[Check]:
    checks = []
    missing = _missing(settings)
    if missing is not None:
        checks.append(
            Check(
                "slack mode",
                "fail",
                t("doctor.slack_missing", locale, missing=missing, mode=settings.slack_mode),
            )
        )
    if settings.slack_bot_token and settings.slack_admin_token is None:
        checks.append(Check("slack deletion", "warn", t("doctor.slack_no_admin", locale)))
    return checks


async def _call(
    session: aiohttp.ClientSession, settings: Settings, method: str, token: str
) -> dict[str, object]:
    """The JSON body of a Web API call on SLACK_API_URL."""
    base = (settings.slack_api_url or DEFAULT_API).rstrip("/")
    async with session.post(
        f"{base}/{method}", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        body: dict[str, object] = await response.json(content_type=None)
        return body


async def online_checks(
    settings: Settings, session: aiohttp.ClientSession, locale: str
) -> list[Check]:
    """`veille doctor`: is the bot token accepted? Unreachable is a warning."""
    import aiohttp

    if not settings.slack_bot_token or settings.slack_oauth:
        return []
    try:
        body = await _call(
            session, settings, "auth.test", settings.slack_bot_token.get_secret_value()
        )
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return [
            Check(
                "slack token",
                "warn",
                t("doctor.unreachable", locale, what="Slack", error=type(exc).__name__),
            )
        ]
    if not body.get("ok"):
        return [
            Check(
                "slack token",
                "fail",
                t("doctor.slack_rejected", locale, error=body.get("error", "?")),
                t("doctor.fix_slack", locale),
            )
        ]
    name = f"{body.get('user')} @ {body.get('team')}"
    return [Check("slack token", "ok", t("doctor.logged_in_as", locale, name=name))]


async def _error(
    session: aiohttp.ClientSession, settings: Settings, method: str, token: str
) -> str | None:
    """The `error` of a Web API call, None when it succeeded; unreachable is a Refusal."""
    import aiohttp

    from bot.platforms.base import unreachable

    try:
        body = await _call(session, settings, method, token)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        raise unreachable(
            "Slack",
            settings.slack_api_url or DEFAULT_API,
            "SLACK_API_URL",
            exc,
            settings.default_locale,
        ) from exc
    return None if body.get("ok") else str(body.get("error", "unknown_error"))


async def preflight(settings: Settings, session: aiohttp.ClientSession) -> None:
    """`veille run`: the bot token (and in Socket Mode the app token) accepted by Slack. In
    OAuth mode there is no token of the app's own to check: each workspace brings its own."""
    if settings.slack_oauth:
        return
    assert settings.slack_bot_token is not None
    locale = settings.default_locale
    error = await _error(
        session, settings, "auth.test", settings.slack_bot_token.get_secret_value()
    )
    if error is not None:
        raise Refusal(t("failure.slack_token", locale, error=error))
    if settings.slack_mode == "socket" and settings.slack_app_token is not None:
        # The URL this returns is single-use and expires unused: asking costs nothing.
        error = await _error(
            session, settings, "apps.connections.open", settings.slack_app_token.get_secret_value()
        )
        if error is not None:
            raise Refusal(t("failure.slack_app_token", locale, error=error))


def _listens(settings: Settings) -> bool:
    return settings.slack_mode == "http"


def _has_bot_token(values: Mapping[str, str]) -> bool:
    return bool(values.get("SLACK_BOT_TOKEN"))


def _needs_signing_secret(values: Mapping[str, str]) -> bool:
    # Socket Mode (an app token) needs no signing secret.
    return _has_bot_token(values) and not values.get("SLACK_APP_TOKEN")


def init_finish(values: dict[str, str]) -> None:
    """Slack skipped: nothing of it left behind. Otherwise the mode follows the tokens given
    unless it was asked for and fits them."""
    if not values.get("SLACK_BOT_TOKEN"):
        for key in SLACK_ONLY:
            values.pop(key, None)
        return
    mode = values.get("VEILLE_SLACK_MODE")
    if mode not in ("socket", "http") or (
        mode == "socket"
        and not values.get("SLACK_APP_TOKEN")
        and values.get("SLACK_SIGNING_SECRET")
    ):
        mode = "socket" if values.get("SLACK_APP_TOKEN") else "http"
    values["VEILLE_SLACK_MODE"] = mode


SLACK = PlatformDescriptor(
    name="slack",
    title="Slack",
    runner="bot.platforms.slack.runner",
    configured=_configured,
    secrets=_secrets,
    incomplete=incomplete,
    explain_failure=explain_failure,
    doctor_checks=doctor_checks,
    online_checks=online_checks,
    preflight=preflight,
    listens_on_http_port=_listens,
    init_questions=(
        InitQuestion("SLACK_BOT_TOKEN", "init.slack_bot_token", flag="slack_bot_token"),
        InitQuestion(
            "SLACK_APP_TOKEN",
            "init.slack_app_token",
            flag="slack_app_token",
            applies=_has_bot_token,
            help="xapp- token: Socket Mode.",
        ),
        InitQuestion(
            "SLACK_SIGNING_SECRET",
            "init.slack_signing_secret",
            flag="slack_signing_secret",
            applies=_needs_signing_secret,
            help="HTTP mode.",
        ),
        # Never asked (init_finish derives it from the tokens): only `--slack-mode` sets it.
        InitQuestion(
            "VEILLE_SLACK_MODE",
            "",
            secret=False,
            flag="slack_mode",
            applies=lambda _values: False,
            choices=("socket", "http"),
        ),
    ),
    init_chosen_by="SLACK_BOT_TOKEN",
    init_finish=init_finish,
)

"""Before `veille run` loads any model: are the tokens accepted, is each platform reachable, is
the HTTP port free? Each check raises a `Failure` a person can act on, in seconds instead of
after a model load and a library's retry loop (Slack's socket client retries for a minute)."""

from __future__ import annotations

import errno
import os
import socket

import aiohttp

from bot.cli.failures import EXIT_CONFIG, EXIT_RUNTIME, Failure
from bot.core.i18n import t
from bot.settings import Settings

DISCORD_DEFAULT_API = "https://discord.com/api/v10"
SLACK_DEFAULT_API = "https://slack.com/api/"
TIMEOUT = aiohttp.ClientTimeout(total=15)


def _reason(exc: BaseException) -> str:
    """'Connection refused' rather than aiohttp's 'Cannot connect to host … ssl:default […]'."""
    os_error = getattr(exc, "os_error", None) or (exc if isinstance(exc, OSError) else None)
    if isinstance(os_error, OSError) and os_error.errno:
        return os.strerror(os_error.errno)
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unreachable(what: str, url: str, exc: BaseException, locale: str) -> Failure:
    variable = "DISCORD_API_URL" if what == "Discord" else "SLACK_API_URL"
    return Failure(t("failure.platform_unreachable", locale, what=what, url=url,
                     error=_reason(exc), variable=variable), EXIT_RUNTIME)


async def check_discord(settings: Settings, session: aiohttp.ClientSession) -> None:
    assert settings.discord_token is not None
    locale = settings.default_locale
    base = (settings.discord_api_url or DISCORD_DEFAULT_API).rstrip("/")
    headers = {"Authorization": f"Bot {settings.discord_token.get_secret_value()}"}
    try:
        async with session.get(f"{base}/users/@me", headers=headers) as response:
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise _unreachable("Discord", base, exc, locale) from exc
    if status == 401:
        raise Failure(t("failure.discord_token", locale), EXIT_CONFIG)
    if status >= 400:
        raise Failure(t("failure.platform_status", locale, what="Discord", url=base, status=status),
                      EXIT_RUNTIME)


async def _slack_call(session: aiohttp.ClientSession, base: str, method: str, token: str,
                      locale: str) -> str | None:
    """The `error` of a Slack Web API call, None when it succeeded."""
    url = f"{base.rstrip('/')}/{method}"
    try:
        async with session.post(url, headers={"Authorization": f"Bearer {token}"}) as response:
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        raise _unreachable("Slack", base, exc, locale) from exc
    return None if body.get("ok") else str(body.get("error", "unknown_error"))


async def check_slack(settings: Settings, session: aiohttp.ClientSession) -> None:
    assert settings.slack_bot_token is not None
    locale = settings.default_locale
    base = settings.slack_api_url or SLACK_DEFAULT_API
    error = await _slack_call(session, base, "auth.test",
                              settings.slack_bot_token.get_secret_value(), locale)
    if error is not None:
        raise Failure(t("failure.slack_token", locale, error=error), EXIT_CONFIG)
    if settings.slack_mode == "socket" and settings.slack_app_token is not None:
        # The URL this returns is single-use and expires unused: asking costs nothing.
        error = await _slack_call(session, base, "apps.connections.open",
                                  settings.slack_app_token.get_secret_value(), locale)
        if error is not None:
            raise Failure(t("failure.slack_app_token", locale, error=error), EXIT_CONFIG)


def check_port(settings: Settings, host: str = "0.0.0.0") -> None:
    """Slack's HTTP mode listens on VEILLE_HTTP_PORT: say now if someone else holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, settings.http_port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise Failure(t("failure.port_in_use", settings.default_locale,
                            detail=f"{host}:{settings.http_port}"), EXIT_RUNTIME) from exc


async def check_platforms(settings: Settings) -> None:
    """Every configured platform's tokens and reachability; the HTTP port in HTTP mode."""
    if settings.slack_configured and settings.slack_mode == "http":
        check_port(settings)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        if settings.discord_configured:
            await check_discord(settings, session)
        if settings.slack_configured:
            await check_slack(settings, session)

"""Before `veille run` loads any model: are the tokens accepted, is each platform reachable, is
the HTTP port free? Each check raises a `Failure` a person can act on, in seconds instead of
after a model load and a library's retry loop (Slack's socket client retries for a minute).
Each platform's own checks live with it (its descriptor's `preflight`, bot/platforms/)."""

from __future__ import annotations

import errno
import socket

import aiohttp

from bot.cli.failures import EXIT_RUNTIME, Failure
from bot.core.i18n import t
from bot.platforms.base import Refusal
from bot.settings import Settings

TIMEOUT = aiohttp.ClientTimeout(total=15)


def check_port(settings: Settings, host: str = "0.0.0.0") -> None:
    """Slack's HTTP mode listens on VEILLE_HTTP_PORT: say now if someone else holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, settings.http_port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise Failure(
                t(
                    "failure.port_in_use",
                    settings.default_locale,
                    detail=f"{host}:{settings.http_port}",
                ),
                EXIT_RUNTIME,
            ) from exc


async def check_platforms(settings: Settings) -> None:
    """Every configured platform's tokens and reachability (its descriptor's `preflight`);
    VEILLE_HTTP_PORT free when one of them serves HTTP."""
    from bot.platforms import configured

    platforms = configured(settings)
    listens = settings.role != "worker"  # a worker serves nothing: Slack's HTTP port is a gateway's
    if listens and any(platform.listens_on_http_port(settings) for platform in platforms):
        check_port(settings)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for platform in platforms:
            try:
                await platform.preflight(settings, session)
            except Refusal as refusal:
                raise Failure(refusal.message, refusal.code) from refusal

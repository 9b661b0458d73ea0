"""Discord as bot.app and the CLI see it: configured by DISCORD_TOKEN (and DISCORD_API_URL),
started by runner.py, its token checked against GET /users/@me by `doctor` and `run`.

Imports nothing of discord.py: the CLI reads this at every start (bot/platforms/base.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core.i18n import t
from bot.platforms.base import Check, InitQuestion, PlatformDescriptor, Refusal

if TYPE_CHECKING:
    import aiohttp
    from pydantic import SecretStr

    from bot.settings import Settings

DEFAULT_API = "https://discord.com/api/v10"
_RUNTIME = 1  # exit status: something at run time went wrong (bot/cli/failures.py)


def _configured(settings: Settings) -> bool:
    return settings.discord_configured


def _secrets(settings: Settings) -> tuple[SecretStr | None, ...]:
    return (settings.discord_token,)


def _api(settings: Settings) -> str:
    return (settings.discord_api_url or DEFAULT_API).rstrip("/")


def explain_failure(exc: BaseException, locale: str) -> str | None:
    """discord.py says a rejected token with LoginFailure (wrapping the 401)."""
    return t("failure.discord_token", locale) if type(exc).__name__ == "LoginFailure" else None


async def _users_me(
    settings: Settings, session: aiohttp.ClientSession, *, read: bool = False
) -> tuple[int, dict[str, object]]:
    """GET /users/@me with the bot token: the status, and (`read`) the body of a 200."""
    assert settings.discord_token is not None
    headers = {"Authorization": f"Bot {settings.discord_token.get_secret_value()}"}
    async with session.get(f"{_api(settings)}/users/@me", headers=headers) as response:
        body = await response.json() if read and response.status == 200 else {}
        return response.status, body


async def online_checks(
    settings: Settings, session: aiohttp.ClientSession, locale: str
) -> list[Check]:
    """`veille doctor`: is the token accepted? Unreachable is a warning (doctor may run offline)."""
    import aiohttp

    if not settings.discord_token:
        return []
    try:
        status, me = await _users_me(settings, session, read=True)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [
            Check(
                "discord token",
                "warn",
                t("doctor.unreachable", locale, what="Discord", error=type(exc).__name__),
            )
        ]
    if status == 401:
        return [
            Check(
                "discord token",
                "fail",
                t("doctor.token_rejected", locale),
                t("doctor.fix_discord", locale),
            )
        ]
    if status >= 400:
        return [
            Check(
                "discord token",
                "warn",
                t("doctor.unreachable", locale, what="Discord", error="ClientResponseError"),
            )
        ]
    return [
        Check("discord token", "ok", t("doctor.logged_in_as", locale, name=me.get("username", "?")))
    ]


async def preflight(settings: Settings, session: aiohttp.ClientSession) -> None:
    """`veille run`: the token accepted and the API reachable, or a Refusal that says which."""
    import aiohttp

    from bot.platforms.base import unreachable

    locale = settings.default_locale
    try:
        status, _ = await _users_me(settings, session)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise unreachable("Discord", _api(settings), "DISCORD_API_URL", exc, locale) from exc
    if status == 401:
        raise Refusal(t("failure.discord_token", locale))
    if status >= 400:
        raise Refusal(
            t("failure.platform_status", locale, what="Discord", url=_api(settings), status=status),
            _RUNTIME,
        )


def doctor_checks(settings: Settings, locale: str) -> list[Check]:
    """The shard layout this process will hold (README: "Discord sharding")."""
    if not _configured(settings):
        return []
    count, ids = settings.discord_shard_count, settings.discord_shards
    if count is None:
        detail = t("doctor.shards_auto", locale)
    elif ids is None or len(ids) == count:
        detail = t("doctor.shards_all", locale, count=count)
    else:
        detail = t("doctor.shards_some", locale, ids=",".join(map(str, ids)), count=count)
    return [Check("discord shards", "ok", detail)]


DISCORD = PlatformDescriptor(
    name="discord",
    title="Discord",
    runner="bot.platforms.discord.runner",
    configured=_configured,
    secrets=_secrets,
    explain_failure=explain_failure,
    doctor_checks=doctor_checks,
    online_checks=online_checks,
    preflight=preflight,
    init_questions=(InitQuestion("DISCORD_TOKEN", "init.discord_token", flag="discord_token"),),
    init_chosen_by="DISCORD_TOKEN",
    quiet_loggers=("discord.gateway", "discord.client"),
    # Veille never joins voice: discord.py's warning that voice is unsupported is noise.
    quiet_notices=(("discord", "voice will NOT be supported"),),
)

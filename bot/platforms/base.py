"""What Veille needs to know about a chat platform, in one object per platform.

The composition root (bot/app.py), the CLI (`run`, `doctor`, `init`, the preflight checks)
and the log redaction loop over `bot.platforms.PLATFORMS` instead of naming Discord and Slack,
so a third platform is a folder with its adapter and its descriptor, registered in one line.

A descriptor imports nothing heavy: the CLI reads it at every start, before it knows whether
the platform is used. Its functions import their adapter (discord.py, Bolt) only when called.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import aiohttp
    from pydantic import SecretStr

    from bot.settings import Settings

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One finding of `veille doctor`: a name, ok/warn/fail, what was found, how to fix it."""

    name: str
    status: Status
    detail: str
    fix: str = ""


class Refusal(Exception):  # noqa: N818 - a platform's answer, not a programming error
    """A preflight check's finding in words: `veille run` stops with `message` and exit status
    `code` (2: the configuration must change, 1: something at run time went wrong)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class InitQuestion:
    """A `veille init` question: the variable it writes, its prompt's catalogue key (empty:
    never asked, only its flag sets it), whether the answer is hidden, the command-line flag
    that answers it, and whether it applies given the answers so far (Slack's app token only
    once a Slack bot token is given)."""

    variable: str
    prompt_key: str
    secret: bool = True
    flag: str = ""  # click option name (`--slack-app-token` → "slack_app_token")
    applies: Callable[[Mapping[str, str]], bool] = lambda _values: True
    help: str = ""  # the flag's --help text
    choices: tuple[str, ...] = ()  # the flag's allowed values, when it has a fixed set


def _never(_settings: Settings, _locale: str) -> str | None:
    return None


def _no_checks(_settings: Settings, _locale: str) -> list[Check]:
    return []


async def _no_online_checks(
    _settings: Settings, _session: aiohttp.ClientSession, _locale: str
) -> list[Check]:
    return []


async def _no_preflight(_settings: Settings, _session: aiohttp.ClientSession) -> None:
    return None


def _unexplained(_exc: BaseException, _locale: str) -> str | None:
    return None


def _keep(_values: dict[str, str]) -> None:
    return None


def _no(_settings: Settings) -> bool:
    return False


@dataclass(frozen=True)
class PlatformDescriptor:
    """One chat platform. `name` is the `Platform` value and the adapter's folder;
    `runner` names the module whose `start(settings, veille)` runs the platform until
    cancelled (imported only when the platform is configured)."""

    name: str
    title: str  # what a person reads: "Discord"
    runner: str
    configured: Callable[[Settings], bool]
    # The Settings values to redact from every log line and message.
    secrets: Callable[[Settings], tuple[SecretStr | None, ...]]
    # Why a half-configured platform cannot start (a token without its partner), or None.
    incomplete: Callable[[Settings, str], str | None] = _never
    # The message for one exception of a failure's chain when it is this platform refusing
    # its token (discord.py's LoginFailure, Slack's invalid_auth), else None (bot/cli/failures).
    explain_failure: Callable[[BaseException, str], str | None] = _unexplained
    # `veille doctor` without the network, then with it (the token asked to log in).
    doctor_checks: Callable[[Settings, str], list[Check]] = _no_checks
    online_checks: Callable[[Settings, aiohttp.ClientSession, str], Awaitable[list[Check]]] = (
        _no_online_checks
    )
    # `veille run` before anything starts: tokens accepted, API reachable; raises Refusal.
    preflight: Callable[[Settings, aiohttp.ClientSession], Awaitable[None]] = _no_preflight
    # Whether it serves HTTP on VEILLE_HTTP_PORT (checked free before the start).
    listens_on_http_port: Callable[[Settings], bool] = _no
    # `veille init`: its questions in order, the variable whose answer means "use this
    # platform", and what to tidy once all is answered (derived values, leftovers removed).
    init_questions: tuple[InitQuestion, ...] = ()
    init_chosen_by: str = ""
    init_finish: Callable[[dict[str, str]], None] = _keep
    # Library loggers too chatty at INFO, and (logger prefix, text) notices never worth showing.
    quiet_loggers: tuple[str, ...] = ()
    quiet_notices: tuple[tuple[str, str], ...] = ()


def _reason(exc: BaseException) -> str:
    """'Connection refused' rather than aiohttp's 'Cannot connect to host … ssl:default […]'."""
    import os

    os_error = getattr(exc, "os_error", None) or (exc if isinstance(exc, OSError) else None)
    if isinstance(os_error, OSError) and os_error.errno:
        return os.strerror(os_error.errno)
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def unreachable(what: str, url: str, variable: str, exc: BaseException, locale: str) -> Refusal:
    """The preflight refusal for an API that did not answer: where it was asked, why not, and
    the variable that points elsewhere (exit status 1: the network, not the configuration)."""
    from bot.core.i18n import t

    return Refusal(
        t(
            "failure.platform_unreachable",
            locale,
            what=what,
            url=url,
            error=_reason(exc),
            variable=variable,
        ),
        1,
    )

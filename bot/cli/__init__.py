"""The `veille` command. Each sub-command lives in its own module and registers itself here."""

from __future__ import annotations

import click

from bot.cli import calibrate, db, digest, doctor, export, hashes, init, prepare, run, scan
from bot.cli.common import EXIT_USAGE, report, session


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="veille")
@click.option(
    "--debug", is_flag=True, help="Show tracebacks and debug logs (VEILLE_LOG_LEVEL=DEBUG)."
)
def cli(debug: bool) -> None:
    """Veille: finds sexualised deepfakes and undress requests in Discord and Slack."""
    session.debug = session.debug or debug


for module in (run, init, prepare, scan, db, doctor, hashes, calibrate, digest, export):
    module.register(cli)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except click.exceptions.UsageError as exc:  # pragma: no cover - click handles most
        exc.show()
        raise SystemExit(EXIT_USAGE) from exc
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:  # the common mistakes get one message and the fix, no traceback
        raise SystemExit(report(exc)) from None

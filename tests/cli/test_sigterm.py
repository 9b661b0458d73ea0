"""SIGTERM (systemd stop, docker stop) ends `veille run` cleanly: the process stops on its own
within seconds, exits 0 and prints no traceback. Discord is the local fake (loopback)."""

from __future__ import annotations

import signal
import time

from tests.cli.conftest import Veille
from tests.cli.servers import fake_discord, start_run


def test_sigterm_drains_and_exits_zero(veille: Veille) -> None:
    assert veille("db", "upgrade").returncode == 0
    with fake_discord() as discord:
        env = {
            **veille.env,
            "VEILLE_SECRET_KEY": "k" * 32,
            "VEILLE_DETECTORS": "hashes",
            "DISCORD_TOKEN": discord.token,
            "DISCORD_API_URL": discord.base_url,
        }
        [process] = start_run(veille.cwd, env, discord)
        try:
            time.sleep(1)
            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            out, err = process.communicate(timeout=40)
            took = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err and took < 30, (took, err)
    assert "stopping" in err

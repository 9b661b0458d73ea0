"""Two real `veille run` processes on one SQLite database, both connected to the (local, fake)
Discord gateway and both receiving every message: a banked image is removed once and carded
once, not once per process (inbox de-duplication, unique tickets, outbox leases)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.cli.conftest import Veille
from tests.cli.servers import fake_discord_thread, start_run
from tests.detectors.hash_images import photo_like, png_bytes


def test_two_processes_act_once(veille: Veille, tmp_path: Path) -> None:
    assert veille("db", "upgrade").returncode == 0
    banked = tmp_path / "banked.png"
    photo_like(77).save(banked)
    assert veille("hashes", "add", str(banked), "--bank", "operator-list").returncode == 0
    with fake_discord_thread() as (discord, thread):
        guild = discord.add_guild("Two Bots")
        general = discord.add_channel(guild, "general")
        member = discord.add_member(guild, "mel")
        env = {
            **veille.env,
            "VEILLE_SECRET_KEY": "k" * 32,
            "VEILLE_DETECTORS": "hashes,text",
            "DISCORD_TOKEN": discord.token,
            "DISCORD_API_URL": discord.base_url,
        }
        processes = start_run(veille.cwd, env, discord, count=2)
        try:
            time.sleep(3)  # READY and guild_ready_timeout in both
            posted = thread.call(
                lambda: discord.post_message(
                    guild, general, member, "", files=[("again.png", png_bytes(photo_like(77)))]
                )
            )
            path = f"/channels/{general['id']}/messages/{posted['id']}"
            deadline = time.monotonic() + 60
            while not discord.find_calls("DELETE", path) and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(4)  # what the second process might still do, given the time to do it
            deletes = discord.find_calls("DELETE", path)
            cards = [
                c
                for c in discord.find_calls("POST", r"/channels/\d+/messages")
                if (c.body or {}).get("embeds")
            ]
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            outputs = [p.communicate(timeout=60) for p in processes]
    assert len(deletes) == 1, outputs
    assert len(cards) <= 1  # no safety channel is set up here: at most the one card
    assert all("Traceback" not in err for _, err in outputs), outputs

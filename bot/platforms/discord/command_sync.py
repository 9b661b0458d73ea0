"""Sync the slash commands only when they changed. Discord rate-limits command writes (and a
global sync can take a while to reach every client), so a restart with the same commands must
not write them again: the payload discord.py would send (translations included) is hashed and
compared with the hash of the last successful sync, kept in VEILLE_DATA_DIR. Delete
`discord-commands.json` there to force a sync."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

log = logging.getLogger(__name__)
STATE_FILE = "discord-commands.json"


async def tree_hash(
    tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None
) -> str:
    """SHA-256 of exactly what `tree.sync(guild=guild)` would send."""
    commands = tree.get_commands(guild=guild)
    translator = tree.translator
    if translator is not None:
        payload = [await c.get_translated_payload(tree, translator) for c in commands]
    else:
        payload = [c.to_dict(tree) for c in commands]
    payload.sort(key=lambda c: (c.get("type", 1), c["name"]))
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _read(path: Path) -> dict[str, str]:
    try:
        state = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _write(path: Path, state: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True), "utf-8")
    tmp.replace(path)


async def sync_if_changed(
    tree: app_commands.CommandTree[Any],
    application_id: int | None,
    data_dir: Path,
    guild: discord.abc.Snowflake | None = None,
) -> bool:
    """Sync when the tree differs from the last sync for this application and scope; True when
    it synced. The hash is stored only once Discord accepted the commands."""
    path = data_dir / STATE_FILE
    key = f"{application_id}:{guild.id if guild else 'global'}"
    digest = await tree_hash(tree, guild)
    state = _read(path)
    if state.get(key) == digest:
        log.info("discord: commands unchanged since the last sync (%s), not re-synced", key)
        return False
    await tree.sync(guild=guild)
    state[key] = digest
    try:
        _write(path, state)
    except OSError as exc:  # next start syncs again: harmless
        log.warning("discord: could not record the command sync in %s: %s", path, exc)
    log.info("discord: commands synced (%s)", key)
    return True

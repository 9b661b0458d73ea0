"""Localised slash commands: discord.py's Translator reading our `discord.toml` catalogues.

Every command string is a `locale_str` whose `key` extra names a catalogue entry; Discord gets
one localisation per locale we ship (EN is the default text itself).
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.core.i18n import LOCALES, catalogue, normalise_locale, t


def loc(default: str, key: str) -> app_commands.locale_str:
    """A command string: `default` is sent as is, other locales come from `discord.<key>`."""
    return app_commands.locale_str(default, key=f"discord.{key}")


class VeilleTranslator(app_commands.Translator):
    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        key = string.extras.get("key")
        lang = normalise_locale(locale.value)
        if key is None or lang not in LOCALES or lang == "en":
            return None
        if key not in catalogue(lang):
            return None  # Discord shows the default rather than our key
        return t(key, lang)

"""Message catalogues: every TOML file in bot/core/locales/<locale>/ is merged (one file per
area: cli.toml, core.toml, discord.toml...). Top-level tables are key prefixes, so
`[cli] no_platform = ...` is `t("cli.no_platform")`. The workspace locale chooses; unknown
locales fall back to English, missing keys fall back to the English text.

The UI languages are the catalogue folders: adding a language is adding a folder (with the
same files and keys as `en/`, which tests/foundation/test_catalogues.py checks)."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

_DIR = Path(__file__).with_name("locales")
# English first: the fallback language, and the first choice the wizards show.
LOCALES: tuple[str, ...] = (
    "en",
    *sorted(
        p.name for p in _DIR.iterdir() if p.is_dir() and p.name != "en" and any(p.glob("*.toml"))
    ),
)


@cache
def catalogue(locale: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted((_DIR / locale).glob("*.toml")):
        merged.update(_flatten(tomllib.loads(path.read_text("utf-8"))))
    return merged


def _flatten(tree: dict[str, object], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def normalise_locale(locale: str | None) -> str:
    """'fr-FR', 'fr_CA.UTF-8' -> 'fr'; anything unknown -> 'en'."""
    if not locale:
        return "en"
    short = locale.replace("_", "-").split("-")[0].split(".")[0].lower()
    return short if short in LOCALES else "en"


def t(key: str, locale: str | None = "en", /, **values: object) -> str:
    """The message `key` in `locale`, formatted with `values`. A missing key returns the key."""
    lang = normalise_locale(locale)
    template = catalogue(lang).get(key) or catalogue("en").get(key) or key
    try:
        return template.format(**values)
    except (KeyError, IndexError):
        return template


def plural(key: str, count: int, locale: str | None = "en", /, **values: object) -> str:
    """`key.one` or `key.other` for `count` (French counts 0 and 1 as singular), formatted
    with `n=count` and `values`: "1 error", "2 errors", "0 erreur"."""
    lang = normalise_locale(locale)
    one = count == 1 or (lang == "fr" and count == 0)
    return t(f"{key}.{'one' if one else 'other'}", lang, n=count, **values)

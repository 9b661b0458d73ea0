"""Both languages say everything: a catalogue key (bot/core/locales/<en|fr>/*.toml) that exists
in one language only, or whose placeholders differ, fails here."""

from __future__ import annotations

import re
import string
import tomllib
from pathlib import Path

import pytest

from bot.core.i18n import LOCALES, _flatten

LOCALES_DIR = Path(__file__).resolve().parents[2] / "bot" / "core" / "locales"


def keys_of(locale: str) -> dict[str, dict[str, str]]:
    """file name -> flattened key -> text."""
    return {path.name: _flatten(tomllib.loads(path.read_text("utf-8")))
            for path in sorted((LOCALES_DIR / locale).glob("*.toml"))}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_catalogue_file_exists_in_every_language() -> None:
    files = {locale: set(keys_of(locale)) for locale in LOCALES}
    assert files["en"] == files["fr"], files


@pytest.mark.parametrize("other", [lang for lang in LOCALES if lang != "en"])
def test_every_key_exists_in_both_languages_with_the_same_placeholders(other: str) -> None:
    english, translated = keys_of("en"), keys_of(other)
    problems = []
    for name in sorted(set(english) | set(translated)):
        en, tr = english.get(name, {}), translated.get(name, {})
        problems += [f"{name}: {key} only in en" for key in sorted(set(en) - set(tr))]
        problems += [f"{name}: {key} only in {other}" for key in sorted(set(tr) - set(en))]
        problems += [f"{name}: {key} placeholders {placeholders(en[key])} vs {placeholders(tr[key])}"
                     for key in sorted(set(en) & set(tr))
                     if placeholders(en[key]) != placeholders(tr[key])]
    assert problems == []


def test_french_texts_are_not_left_in_english() -> None:
    """A French value identical to a long English sentence was copied, not translated."""
    english, french = keys_of("en"), keys_of("fr")
    copied = [f"{name}: {key}" for name, keys in english.items() for key, text in keys.items()
              if len(re.findall(r"[a-z]{3,}", re.sub(r"\{[^}]*\}", "", text))) >= 4
              and french.get(name, {}).get(key) == text]
    assert copied == []

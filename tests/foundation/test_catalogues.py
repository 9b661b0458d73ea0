"""Every language says everything: a catalogue key (bot/core/locales/<locale>/*.toml) that
exists in one language only, or whose placeholders differ, fails here. The languages are the
catalogue folders, so a new folder is checked as soon as it exists."""

from __future__ import annotations

import re
import string
import tomllib
from pathlib import Path

import pytest

from bot.core.i18n import LOCALES, _flatten, catalogue, t
from bot.workspace_settings import (
    ACTIONS,
    DIGEST_AT,
    DIGEST_FREQUENCIES,
    LABELS,
    LANGUAGE_NAME,
    SENSITIVITIES,
    SETTINGS,
    action_label,
    frequency_label,
    sensitivity_label,
)

LOCALES_DIR = Path(__file__).resolve().parents[2] / "bot" / "core" / "locales"


def keys_of(locale: str) -> dict[str, dict[str, str]]:
    """file name -> flattened key -> text."""
    return {
        path.name: _flatten(tomllib.loads(path.read_text("utf-8")))
        for path in sorted((LOCALES_DIR / locale).glob("*.toml"))
    }


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_languages_are_the_catalogue_folders() -> None:
    folders = {p.name for p in LOCALES_DIR.iterdir() if p.is_dir()}
    assert LOCALES[0] == "en" and set(LOCALES) == folders and len(LOCALES) >= 2


def test_every_catalogue_file_exists_in_every_language() -> None:
    files = {locale: set(keys_of(locale)) for locale in LOCALES}
    assert all(names == files["en"] for names in files.values()), files


def test_each_language_is_named_in_itself() -> None:
    """The language choices of both wizards show these names (settings.language.name)."""
    names = [t(LANGUAGE_NAME, locale) for locale in LOCALES]
    assert names[:2] == ["English", "Français"] and len(set(names)) == len(names)


def test_every_setting_option_has_a_label_in_every_language() -> None:
    keys = [s.label for s in SETTINGS.values()] + [f"{LABELS}.actions", f"{LABELS}.digest_time"]
    keys += [sensitivity_label(v) for v in SENSITIVITIES] + [action_label(a) for a in ACTIONS]
    keys += [frequency_label(f) for f in DIGEST_FREQUENCIES] + [DIGEST_AT, LANGUAGE_NAME]
    for locale in LOCALES:
        missing = [key for key in keys if key not in catalogue(locale)]
        assert missing == [], (locale, missing)


@pytest.mark.parametrize("other", [lang for lang in LOCALES if lang != "en"])
def test_every_key_exists_in_both_languages_with_the_same_placeholders(other: str) -> None:
    english, translated = keys_of("en"), keys_of(other)
    problems = []
    for name in sorted(set(english) | set(translated)):
        en, tr = english.get(name, {}), translated.get(name, {})
        problems += [f"{name}: {key} only in en" for key in sorted(set(en) - set(tr))]
        problems += [f"{name}: {key} only in {other}" for key in sorted(set(tr) - set(en))]
        problems += [
            f"{name}: {key} placeholders {placeholders(en[key])} vs {placeholders(tr[key])}"
            for key in sorted(set(en) & set(tr))
            if placeholders(en[key]) != placeholders(tr[key])
        ]
    assert problems == []


def test_french_texts_are_not_left_in_english() -> None:
    """A French value identical to a long English sentence was copied, not translated."""
    english, french = keys_of("en"), keys_of("fr")
    copied = [
        f"{name}: {key}"
        for name, keys in english.items()
        for key, text in keys.items()
        if len(re.findall(r"[a-z]{3,}", re.sub(r"\{[^}]*\}", "", text))) >= 4
        and french.get(name, {}).get(key) == text
    ]
    assert copied == []

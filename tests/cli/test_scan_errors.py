"""Every message of the fetcher (bot/media/messages.py) is said again in each language by the
catalogue: a new fetcher message without its `scan.fetch.<NAME>` key fails here."""

from __future__ import annotations

import re

import pytest

from bot.cli.scan_errors import FileTooLarge, NotRegularFile, fetch_error, file_error, say
from bot.core.i18n import t
from bot.media import messages

TEMPLATES = {
    name: text for name, text in vars(messages).items() if name.isupper() and isinstance(text, str)
}
SAMPLE = {
    "detail": "boom",
    "scheme": "ftp",
    "address": "10.0.0.1",
    "kind": "a private",
    "host": "example.org",
    "limit": "20 MB",
    "seconds": 10,
    "max": 5,
    "status": 404,
    "encoding": "br",
    "content_type": "text/plain",
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_each_fetcher_message_has_its_catalogue_sentence(name: str) -> None:
    fields = {f for f in re.findall(r"\{(\w+)", TEMPLATES[name])}
    text = TEMPLATES[name].format(**{f: SAMPLE[f] for f in fields})

    key, values = fetch_error(text)

    assert key == f"scan.fetch.{name}", (text, key)
    assert t(key, "fr") != key and t(key, "en") != key
    assert say((key, values), "en") == text  # English says exactly what the fetcher said
    for value in SAMPLE.values():
        if f"{value}" in text and f"{value}" != "a private":
            assert f"{value}" in say((key, values), "fr")


def test_address_kinds_and_unknown_messages() -> None:
    said = fetch_error(messages.REFUSED_ADDRESS.format(address="::1", kind="a loopback"))
    assert say(said, "fr") == "refusé : ::1 est une adresse de bouclage (loopback)"
    assert say(fetch_error("something new"), "fr") == "something new"


def test_file_errors() -> None:
    assert (
        say(file_error(FileNotFoundError(2, "No such file or directory")), "fr")
        == "fichier introuvable"
    )
    assert "1024 octets" in say(file_error(FileTooLarge(1024)), "fr")
    assert "ordinaire" in say(file_error(NotRegularFile()), "fr")
    assert say(file_error(PermissionError(13, "Permission denied")), "fr") == "accès refusé"

"""The README says only what exists: every `veille` sub-command and option and every variable
it names is real, and "Two commands" stays two commands."""

from __future__ import annotations

import re
from pathlib import Path

import click

from bot.cli import cli
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")


def _variables() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        names.update(c for c in getattr(field.validation_alias, "choices", []) if c.isupper())
    return names


def test_two_commands_are_two() -> None:
    section = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in block.strip().splitlines()] == [
        ["make", "run"],
        ["make", "test"],
    ]


def test_every_named_command_and_option_exists() -> None:
    for match in re.finditer(r"veille((?: [a-z][a-z-]+)+)((?: -[-a-z]+| [^`|\n]*?)*)`", README):
        before = README[max(0, match.start() - 2) : match.start()]
        if before.endswith("/") and not before.endswith("n/"):  # /veille: the chat command
            continue
        words = match.group(1).split()
        command: click.Command = cli
        for word in words:
            if not isinstance(command, click.Group) or word not in command.commands:
                break
            command = command.commands[word]
        assert command is not cli, match.group(0)
        known = {opt for p in command.params for opt in getattr(p, "opts", [])}
        known |= {"--help", "-h", "--debug"}
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", match.group(0)):
            assert option in known, f"{option} in {match.group(0)!r}"


def test_every_named_variable_exists() -> None:
    """A Settings variable, or one the compose file reads (`${NAME:-…}`)."""
    named = set(re.findall(r"\b((?:VEILLE|DISCORD|SLACK)_[A-Z_]+[A-Z])\b", README))
    compose = (ROOT / "deploy" / "compose.yml").read_text("utf-8")
    from bot.core.failpoints import ENV as FAILPOINT  # tests only, read before any settings

    compose_names = set(re.findall(r"\$\{([A-Z_]+)", compose))
    assert named - _variables() - compose_names - {FAILPOINT} == set()

"""`veille init`: an interactive wizard that writes `.env` (flags make it non-interactive)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import click
from dotenv import dotenv_values

from bot.cli.common import EXIT_USAGE, console, fail
from bot.core.i18n import LOCALES, normalise_locale, t
from bot.platforms import PLATFORMS
from bot.settings import (
    DEFAULT_CLIP_MODEL,
    DEFAULT_CLIP_PRETRAINED,
    DEFAULT_DATABASE_URL,
    DEFAULT_DETECTORS,
)

# (variable, prompt key, secret?) in the order the wizard asks; `_asked()` skips what does not
# apply (a platform's questions say when they do, CLIP's weights without CLIP). Each
# platform's questions come from its descriptor (bot/platforms/).
QUESTIONS: tuple[tuple[str, str, bool], ...] = (
    ("VEILLE_LOCALE", "init.locale", False),
    *(
        (q.variable, q.prompt_key, q.secret)
        for platform in PLATFORMS
        for q in platform.init_questions
        if q.prompt_key
    ),
    ("VEILLE_DATABASE_URL", "init.database_url", False),
    ("VEILLE_DETECTORS", "init.detectors", False),
    ("VEILLE_CLIP_MODEL", "init.clip_model", False),
    ("VEILLE_CLIP_PRETRAINED", "init.clip_pretrained", False),
)
_PLATFORM_QUESTIONS = {q.variable: q for platform in PLATFORMS for q in platform.init_questions}
DEFAULTS = {
    "VEILLE_DATABASE_URL": DEFAULT_DATABASE_URL,
    "VEILLE_DETECTORS": DEFAULT_DETECTORS,
    "VEILLE_CLIP_MODEL": DEFAULT_CLIP_MODEL,
    "VEILLE_CLIP_PRETRAINED": DEFAULT_CLIP_PRETRAINED,
}


def _asked(key: str, values: dict[str, str]) -> bool:
    """Whether the question about `key` applies, given the answers so far."""
    if key in _PLATFORM_QUESTIONS:
        return _PLATFORM_QUESTIONS[key].applies(values)
    if key in ("VEILLE_CLIP_MODEL", "VEILLE_CLIP_PRETRAINED"):
        names = values.get("VEILLE_DETECTORS") or DEFAULT_DETECTORS
        return "clip" in [n.strip() for n in names.split(",")]
    return True


def _ask(key: str, prompt_key: str, secret: bool, current: str, lang: str, force: bool) -> str:
    """One answer. A secret that is already set shows no value: Enter keeps it, except with
    --force, where an empty answer removes it (a token can be taken out of .env)."""
    label = t(prompt_key, lang)
    if secret and current:
        label += " " + t("init.secret_set_force" if force else "init.secret_set", lang)
        answer = click.prompt(label, default="", hide_input=True, show_default=False)
        return answer.strip() if (answer.strip() or force) else current
    if key == "VEILLE_LOCALE":
        return str(click.prompt(label, default=current or lang, type=click.Choice(LOCALES))).strip()
    answer = click.prompt(label, default=current or "", hide_input=secret, show_default=not secret)
    return answer.strip()


def render_env(values: dict[str, str]) -> str:
    lines = ["# Written by `veille init`. See deploy/.env.example for every variable.", ""]
    for key, value in values.items():
        if value:
            quoted = value if all(c.isalnum() or c in "-_.:/+@=" for c in value) else f'"{value}"'
            lines.append(f"{key}={quoted}")
    return "\n".join(lines) + "\n"


def write_env(path: Path, values: dict[str, str]) -> None:
    """Write atomically with owner-only permissions: the file holds tokens and the secret key."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(render_env(values))
    os.replace(tmp, path)


def _platform_flags(command: Callable[..., None]) -> Callable[..., None]:
    """The flags of every platform's init questions (`--discord-token`, `--slack-mode`...)."""
    for question in reversed(
        [q for platform in PLATFORMS for q in platform.init_questions if q.flag]
    ):
        command = click.option(
            "--" + question.flag.replace("_", "-"),
            question.flag,
            default=None,
            help=question.help or None,
            type=click.Choice(question.choices) if question.choices else None,
        )(command)
    return command


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option(
        "--env-file", type=click.Path(path_type=Path), default=Path(".env"), show_default=True
    )
    @_platform_flags
    @click.option("--database-url", default=None)
    @click.option("--clip-model", default=None)
    @click.option("--clip-pretrained", default=None, help="Hub tag or local checkpoint path.")
    @click.option(
        "--locale",
        type=click.Choice(LOCALES),
        default=None,
        help="Language of Veille's messages (default: from LANG).",
    )
    @click.option(
        "--detectors", default=None, help=f"Comma-separated (default: {DEFAULT_DETECTORS})."
    )
    @click.option(
        "--non-interactive", "-y", is_flag=True, help="Ask nothing; use flags and defaults."
    )
    @click.option("--force", is_flag=True, help="Replace values already in the file.")
    def init(
        env_file: Path, non_interactive: bool, force: bool, locale: str | None, **flags: str | None
    ) -> None:
        """Write .env: language, platform tokens, database URL, detectors, a generated secret key."""
        existing = (
            {k: v or "" for k, v in dotenv_values(env_file).items()} if env_file.exists() else {}
        )
        values: dict[str, str] = dict(existing)
        lang = normalise_locale(locale or values.get("VEILLE_LOCALE") or os.environ.get("LANG"))
        given = {
            **{q.variable: flags[q.flag] for q in _PLATFORM_QUESTIONS.values() if q.flag},
            "VEILLE_DATABASE_URL": flags["database_url"],
            "VEILLE_CLIP_MODEL": flags["clip_model"],
            "VEILLE_CLIP_PRETRAINED": flags["clip_pretrained"],
            "VEILLE_LOCALE": locale,
            "VEILLE_DETECTORS": flags["detectors"],
        }
        interactive = not non_interactive and console.is_terminal
        if not interactive and not non_interactive:
            fail(t("init.no_terminal", lang), EXIT_USAGE)
        for key, prompt_key, secret in QUESTIONS:
            current = values.get(key) or DEFAULTS.get(key, "")
            if given.get(key) is not None:
                values[key] = str(given[key])
            elif not _asked(key, values):
                continue
            elif interactive and (force or not values.get(key)):
                values[key] = _ask(
                    key,
                    prompt_key,
                    secret,
                    values.get(key, "") or DEFAULTS.get(key, ""),
                    lang,
                    force,
                )
            else:
                values.setdefault(key, current)
            if key == "VEILLE_LOCALE":
                lang = normalise_locale(values[key] or lang)
        if not values.get("VEILLE_LOCALE"):
            values["VEILLE_LOCALE"] = lang  # LANG=fr: Veille speaks French from now on
        for question in _PLATFORM_QUESTIONS.values():  # flag-only values (--slack-mode)
            if not question.prompt_key and given.get(question.variable):
                values[question.variable] = str(given[question.variable])
        for platform in PLATFORMS:  # derived values; a skipped platform leaves nothing behind
            platform.init_finish(values)
        # Never rotate an existing key silently: quarantined evidence is encrypted with it.
        if not values.get("VEILLE_SECRET_KEY"):
            values["VEILLE_SECRET_KEY"] = secrets.token_urlsafe(32)
        try:
            write_env(env_file, values)
        except OSError as exc:
            fail(t("failure.cannot_write", lang, path=env_file, error=exc.strerror or exc))
        platforms = [
            platform.title for platform in PLATFORMS if values.get(platform.init_chosen_by)
        ]
        console.print(t("init.written", lang, path=env_file, platforms=", ".join(platforms) or "—"))
        console.print(t("init.next", lang))

"""Workspace settings, declared once: each setting's name, type, default, allowed values,
validation, the options the setup wizards offer and the catalogue keys of their labels.

The store's column defaults, the core's validation of a wizard's `SetupInput`, both setup
wizards (Discord and Slack), `veille init` and the digest schedule read this module, so a
setting cannot mean one thing in one place and another elsewhere. It sits at the top of the
`bot` package, beside `bot/settings.py`, and imports nothing from `bot.core` or `bot.store`:
the store reads its defaults without importing the core.

Checks raise `SettingError`, a plain `ValueError` carrying the catalogue key of its message and
the values to format it with; the core says it in the workspace's language. The UI languages
are the catalogue folders (`bot.core.i18n.LOCALES`); the core passes them in, so this module
need not know where the catalogues live.

Changing a default or the meaning of a stored value changes what is stored: that needs an
Alembic revision (see migrations/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LABELS = "settings.label"  # catalogue prefix of each setting's name in the wizards


class SettingError(ValueError):
    """A value a setting cannot take. `key` is the catalogue key of the message, `values` the
    placeholders it is formatted with; `str()` is a plain English line for logs."""

    def __init__(self, setting: str, key: str, **values: object) -> None:
        super().__init__(f"invalid {setting}: {values}")
        self.setting = setting
        self.key = key
        self.values = values


# -- allowed values and the options the wizards show (label keys beside them) ---------------

# Sensitivity presets: what each one shifts is policy (bot.core.policy.SENSITIVITY_SHIFT).
SENSITIVITIES = ("relaxed", "standard", "strict")
# What Veille may do with a flagged message, and whether it does by default; stored as one
# JSON object {name: on} (the column `actions`).
ACTION_DEFAULTS: dict[str, bool] = {"delete": True, "notify": True, "timeout": False}
ACTIONS = tuple(ACTION_DEFAULTS)
# Digest frequencies both wizards offer, each at a time of day (HH:MM in the workspace's
# timezone): "off", "daily@HH:MM" or "weekly:<day>@HH:MM". Stored schedules may also be
# "cron:<5 fields>" (set outside the wizards); the digest's scheduler reads the same grammar.
DIGEST_FREQUENCIES = ("daily", "weekly:mon", "off")
# Discord has no time picker: its wizard offers these times (a select holds at most 25
# options); Slack's time picker offers every minute.
DIGEST_TIMES = tuple(f"{hour:02d}:00" for hour in range(24))
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Timezones a wizard suggests; any IANA name is valid.
TIMEZONES = (
    "UTC",
    "Europe/Paris",
    "Europe/Brussels",
    "Europe/London",
    "Europe/Berlin",
    "America/Montreal",
    "America/New_York",
    "America/Los_Angeles",
    "Africa/Dakar",
    "Africa/Abidjan",
    "Asia/Tokyo",
    "Australia/Sydney",
)
MAX_DAYS_OR_HOURS = 3650

# -- defaults (the store's column defaults: stored values, do not change lightly) ------------

DEFAULT_LOCALE = "en"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_SENSITIVITY = "standard"
DEFAULT_DIGEST_FREQUENCY = "daily"
DEFAULT_DIGEST_TIME = "09:00"
DEFAULT_DIGEST_SCHEDULE = f"{DEFAULT_DIGEST_FREQUENCY}@{DEFAULT_DIGEST_TIME}"
DEFAULT_RETENTION_DAYS = 30
DEFAULT_SLA_HOURS = 24


def sensitivity_label(value: str) -> str:
    return f"settings.sensitivity.{value}"


def action_label(value: str) -> str:
    return f"settings.action.{value}"


def frequency_label(frequency: str) -> str:
    """ "weekly:mon" -> "settings.digest.weekly_mon"."""
    return f"settings.digest.{frequency.replace(':', '_')}"


LANGUAGE_NAME = "settings.language.name"  # each catalogue names its own language ("Français")
DIGEST_AT = "settings.digest.at"  # "{schedule} at {time}"


# -- the digest schedule grammar -------------------------------------------------------------

_TIME = r"(?P<hh>[01]?\d|2[0-3]):(?P<mm>[0-5]\d)"
_DAILY = re.compile(rf"^daily@{_TIME}$")
_WEEKLY = re.compile(rf"^weekly:(?P<dow>{'|'.join(WEEKDAYS)})@{_TIME}$")
_CRON_FIELD = re.compile(r"^[0-9a-z*/,?#-]+$")


@dataclass(frozen=True)
class DigestSchedule:
    """A parsed `digest_schedule`: `frequency` is "off", "daily", "weekly:<day>" or "cron";
    `cron` holds the five standard cron fields of a "cron:" schedule."""

    frequency: str
    hour: int = 0
    minute: int = 0
    weekday: str = ""
    cron: tuple[str, ...] = ()

    @property
    def time(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d}"


def parse_digest_schedule(spec: str) -> DigestSchedule:
    """The schedule in a `digest_schedule` string (case and spaces ignored; "" is off).
    Raises SettingError for anything else."""
    text = (spec or "off").strip().lower()
    if text == "off":
        return DigestSchedule("off")
    if match := _DAILY.match(text):
        return DigestSchedule("daily", int(match["hh"]), int(match["mm"]))
    if match := _WEEKLY.match(text):
        return DigestSchedule(
            f"weekly:{match['dow']}", int(match["hh"]), int(match["mm"]), weekday=match["dow"]
        )
    if text.startswith("cron:"):
        fields = tuple(text.removeprefix("cron:").split())
        if len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields):
            return DigestSchedule("cron", cron=fields)
    raise SettingError("digest_schedule", "settings.invalid.digest_schedule", schedule=spec)


def compose_schedule(frequency: str, at: str = DEFAULT_DIGEST_TIME) -> str:
    """The stored string for a wizard's frequency and time: ("weekly:mon", "08:30") ->
    "weekly:mon@08:30", ("off", ...) -> "off". Not checked here: the core checks what it is
    given, so a bad pair is refused the same way from either wizard."""
    return "off" if frequency == "off" else f"{frequency}@{at}"


def split_digest_schedule(spec: str) -> tuple[str, str]:
    """(frequency, time) a wizard shows for a stored schedule; a schedule no wizard makes
    (a cron line, or an unreadable one) shows as the default frequency and time."""
    try:
        parsed = parse_digest_schedule(spec)
    except SettingError:
        parsed = parse_digest_schedule(DEFAULT_DIGEST_SCHEDULE)
    if parsed.frequency == "cron":
        parsed = parse_digest_schedule(DEFAULT_DIGEST_SCHEDULE)
    if parsed.frequency == "off":
        return "off", DEFAULT_DIGEST_TIME
    return parsed.frequency, parsed.time


def digest_options(at: str = DEFAULT_DIGEST_TIME) -> tuple[str, ...]:
    """The schedules a wizard offers at the time of day `at`, in the order shown."""
    return tuple(compose_schedule(f, at) for f in DIGEST_FREQUENCIES)


# -- checks (each raises SettingError) ------------------------------------------------------


def check_choice(setting: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise SettingError(setting, f"settings.invalid.{setting}", allowed=", ".join(allowed))


def check_sensitivity(value: str) -> None:
    check_choice("sensitivity", value, SENSITIVITIES)


def check_locale(value: str, locales: Sequence[str]) -> None:
    check_choice("locale", value, locales)


def check_timezone(value: str) -> None:
    """An IANA name the digest scheduler can use."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingError("timezone", "settings.invalid.timezone", timezone=value) from exc


def check_digest_schedule(value: str) -> None:
    parse_digest_schedule(value)


def check_count(setting: str, value: int) -> None:
    """Retention days and SLA hours: whole numbers from 1 to MAX_DAYS_OR_HOURS."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DAYS_OR_HOURS:
        raise SettingError(setting, "settings.invalid.number", max=MAX_DAYS_OR_HOURS)


# -- the declarations -----------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One workspace setting. `choices` lists the allowed values when they are a closed set;
    `check` refuses a bad value (SettingError); `label` is the catalogue key of its name."""

    name: str
    type: type
    default: Any
    choices: tuple[str, ...] = ()
    check: Callable[[Any], None] | None = None

    @property
    def label(self) -> str:
        return f"{LABELS}.{self.name}"


def _count(name: str) -> Callable[[Any], None]:
    return lambda value: check_count(name, value)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        # The locale's allowed values are the catalogue folders: checked by `check_setting`.
        Setting("locale", str, DEFAULT_LOCALE),
        Setting("timezone", str, DEFAULT_TIMEZONE, TIMEZONES, check_timezone),
        Setting("safety_channel_id", str, None),
        Setting("quarantine_channel_id", str, None),
        Setting("moderator_role_ids", list, ()),  # Discord roles or Slack user groups
        Setting("moderator_user_ids", list, ()),  # Slack: individual moderators
        Setting("admin_role_ids", list, ()),
        Setting("allow_role_ids", list, ()),  # authors with these roles are never scanned
        Setting("allow_channel_ids", list, ()),  # channels never scanned (channel overrides)
        Setting("sensitivity", str, DEFAULT_SENSITIVITY, SENSITIVITIES, check_sensitivity),
        *(Setting(name, bool, on) for name, on in ACTION_DEFAULTS.items()),
        Setting("digest_schedule", str, DEFAULT_DIGEST_SCHEDULE, check=check_digest_schedule),
        Setting("retention_days", int, DEFAULT_RETENTION_DAYS, check=_count("retention_days")),
        Setting("sla_hours", int, DEFAULT_SLA_HOURS, check=_count("sla_hours")),
    )
}


def check_setting(name: str, value: Any, *, locales: Sequence[str]) -> None:
    """Refuse a value setting `name` cannot take (SettingError); None is "unchanged"."""
    if value is None:
        return
    if name == "locale":
        check_locale(value, locales)
        return
    setting = SETTINGS[name]
    if setting.check is not None:
        setting.check(value)

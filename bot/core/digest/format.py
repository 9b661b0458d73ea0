"""Numbers, percentages, changes, durations and dates written the English or the French way
(1,234 / 1 234, +12% / +12 %, 2 h 15 min, lun. 23 nov. 2026) for digests and their chart."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from bot.core.i18n import normalise_locale, t

NNBSP = "\u202f"  # French typography: thin no-break space as thousands separator, before "%"


def fmt_int(value: int, locale: str) -> str:
    """1,234 in English, 1 234 in French."""
    text = f"{value:,}"
    return text.replace(",", NNBSP) if normalise_locale(locale) == "fr" else text


def fmt_percent(ratio: float, locale: str, *, signed: bool = False) -> str:
    """0.125 -> "13%" / "13 %"; signed adds "+" and a real minus sign."""
    value = round(ratio * 100)
    sign = ("+" if value > 0 else "−" if value < 0 else "") if signed else ""
    body = f"{sign}{fmt_int(abs(value), locale) if signed else fmt_int(value, locale)}"
    return f"{body}{NNBSP}%" if normalise_locale(locale) == "fr" else f"{body}%"


def fmt_change(current: float, previous: float, locale: str) -> str:
    """The change from the previous period: "+12%", "−20%", "new" or "no change"."""
    if current == previous:
        return t("digest.change_same", locale)
    if previous == 0:
        return t("digest.change_new", locale)
    return fmt_percent((current - previous) / previous, locale, signed=True)


def fmt_duration(value: timedelta | None, locale: str) -> str:
    """The two largest units: "1 d 4 h", "2 h 15 min", "40 s"; "—" for no value."""
    if value is None:
        return t("digest.none", locale)
    seconds = max(int(value.total_seconds()), 0)
    amounts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        amount, seconds = divmod(seconds, size)
        amounts.append((unit, amount))
    # The largest non-zero unit and the one after it (when not zero): "7 d", not "7 d 2 min".
    first = next((i for i, (_u, amount) in enumerate(amounts) if amount), len(amounts) - 1)
    parts = [
        t(f"digest.unit.{unit}", locale, n=amount)
        for unit, amount in amounts[first : first + 2]
        if amount or unit == amounts[first][0]
    ]
    return " ".join(parts)


def _calendar(locale: str, key: str) -> list[str]:
    return t(f"digest.cal.{key}", locale).split(",")


def fmt_date(day: date, locale: str) -> str:
    return t(
        "digest.cal.date",
        locale,
        weekday=_calendar(locale, "weekdays")[day.weekday()],
        day=day.day,
        month=_calendar(locale, "months")[day.month - 1],
        year=day.year,
    )


def fmt_short_day(day: date, locale: str) -> str:
    return t(
        "digest.cal.short_day",
        locale,
        weekday=_calendar(locale, "weekdays")[day.weekday()],
        day=day.day,
    )


def fmt_datetime(when: datetime, locale: str) -> str:
    return t(
        "digest.cal.datetime",
        locale,
        day=when.day,
        month=_calendar(locale, "months")[when.month - 1],
        hh=f"{when.hour:02d}",
        mm=f"{when.minute:02d}",
    )


def severity_label(severity: str, locale: str) -> str:
    return t(f"digest.severity.{severity}", locale)

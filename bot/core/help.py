"""Guidance for people asking for help with intimate images of themselves: supportive, private,
never a punishment. The services named are the ones that act on such images: StopNCII.org
(adults, hashes made on the person's own device), Take It Down (NCMEC, images taken before 18),
and in France PHAROS (the police reporting platform) and 3018 (the national line for young people
facing online violence)."""

from __future__ import annotations

from bot.core.i18n import normalise_locale, t

STOPNCII = "https://stopncii.org"
TAKE_IT_DOWN = "https://takeitdown.ncmec.org"
PHAROS = "https://www.internet-signalement.gouv.fr"
NCMEC_CYBERTIPLINE = "https://report.cybertip.org"
IWF = "https://report.iwf.org.uk"


def help_guidance(locale: str | None) -> str:
    """The private answer to a help request, in the workspace's language."""
    lang = normalise_locale(locale)
    return t("core.help.answer", lang, stopncii=STOPNCII, takeitdown=TAKE_IT_DOWN, pharos=PHAROS)


def reporting_guidance(locale: str | None) -> str:
    """What moderators should do with a CRITICAL ticket: report, do not share or download."""
    return t(
        "core.critical.guidance",
        normalise_locale(locale),
        ncmec=NCMEC_CYBERTIPLINE,
        iwf=IWF,
        pharos=PHAROS,
    )

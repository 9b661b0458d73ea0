"""The detectors' reasons and categories as a person reads them, in the workspace's language.

Detectors write their reasons in English, in a few fixed shapes (`detectors/*.py`); they are
stored on tickets as written. Here each shape is read back and said again through the
catalogue (bot/core/locales/*/reasons.toml), and internal tags — the text grammar's word classes
such as `(agent, ask, fake, harm_verb, victim)` — are dropped. A reason in no known shape is
shown as written, its trailing tag list dropped as well.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.core.i18n import t

# A trailing "(agent, ask, harm_verb)": lower-case identifiers only, at least one comma or "_".
_TAGS = re.compile(
    r"\s*\((?:[a-z]+_?[a-z_]*)(?:,\s*[a-z]+_?[a-z_]*)+\)\s*$|\s*\([a-z]+_[a-z_]+\)\s*$"
)
# The text grammar's context words, as `detectors/text_grammar.py` and `text_request.py` write
# them (after "lowered: " when they lowered the score).
_WORDS = {
    "addressed to an image AI": "addressed_ai",
    "naming an image AI": "naming_ai",
    "replying to an image": "replying_image",
    "reads as a help request": "reads_help",
    "negated": "negated",
    "a question": "question",
}


def category_name(category: str, lang: str) -> str:
    key = f"reason.category.{category}"
    text = t(key, lang)
    return category if text == key else text


def _words(detail: str, lang: str) -> str:
    """ " addressed to an image AI, replying to an image; lowered: negated" in `lang`."""
    raised, _, lowered = detail.partition("; lowered: ")
    raised, lowered = raised.strip(), lowered.replace("; lowered: ", ", ")

    def say(words: str) -> str:
        out = []
        for word in filter(None, (w.strip() for w in words.split(","))):
            if word.endswith(" context"):
                what = word.removesuffix(" context")
                named = t(f"reason.context.{what}", lang)
                out.append(
                    t(
                        "reason.word.context",
                        lang,
                        what=what.replace("_", " ") if named.startswith("reason.") else named,
                    )
                )
            else:
                key = _WORDS.get(word)
                out.append(t(f"reason.word.{key}", lang) if key else word)
        return ", ".join(out)

    text = f" {say(raised)}" if raised else ""
    if lowered:
        text += t("reason.lowered", lang, words=say(lowered))
    return text


def _clip(m: re.Match[str], lang: str) -> str:
    return t(
        "reason.clip",
        lang,
        category=category_name(m["category"], lang),
        pos=m["pos"],
        neg=m["neg"],
        margin=m["margin"],
    )


def _undress(m: re.Match[str], lang: str) -> str:
    language = t("reason.model", lang) if m["lang"] == "model" else m["lang"]
    return t("reason.undress", lang, language=language, excerpt=m["excerpt"]) + _words(
        _TAGS.sub("", m["detail"] or ""), lang
    )


def _help(m: re.Match[str], lang: str) -> str:
    language = t("reason.model", lang) if m["lang"] == "model" else m["lang"]
    return t("reason.help", lang, language=language, excerpt=m["excerpt"])


def _hash(m: re.Match[str], lang: str) -> str:
    how = m["how"]
    for pattern, key in _HOW:
        found = pattern.match(how)
        if found:
            how = t(f"reason.how.{key}", lang, **found.groupdict())
            break
    if m["allow"]:
        return t("reason.hash_allowed", lang, bank=m["bank"], how=how)
    source = t(f"reason.source.{m['source']}", lang)
    if source == f"reason.source.{m['source']}":
        source = m["source"]
    return t("reason.hash", lang, source=source, bank=m["bank"], how=how)


def _fixed(key: str) -> Callable[[re.Match[str], str], str]:
    return lambda m, lang: t(f"reason.fixed.{key}", lang, **m.groupdict())


_HOW: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^by (?P<label>SHA-256|MD5) \(exact file\)$"), "exact"),
    (re.compile(r"^at PDQ distance (?P<distance>\d+)$"), "pdq"),
    (re.compile(r"^at PDQ-window distance (?P<distance>\d+) \(crop-robust\)$"), "window"),
    (
        re.compile(
            r"^by keypoints: (?P<count>\d+) of (?P<stored>\d+) stored corners agree"
            r" \(crop-robust\)$"
        ),
        "keypoints",
    ),
)

_SHAPES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str], str], str]], ...] = (
    (
        re.compile(
            r"^CLIP (?P<category>\w+): closer to '(?P<pos>.*)' than to '(?P<neg>.*)'"
            r" \(margin (?P<margin>[+-]?[\d.]+)\)$"
        ),
        _clip,
    ),
    (re.compile(r"^nsfw: explicit nudity (?P<score>[\d.]+)$"), _fixed("nsfw")),
    (re.compile(r"^nsfw could not score this image \((?P<error>\w+)\)$"), _fixed("nsfw_failed")),
    (
        re.compile(r"^undress request \((?P<lang>[^)]+)\): '(?P<excerpt>.*)'(?P<detail>[^']*)$"),
        _undress,
    ),
    (
        re.compile(
            r"^help request \((?P<lang>[^)]+)\): '(?P<excerpt>.*)' — may be a victim asking"
            r" for help.*$"
        ),
        _help,
    ),
    (
        re.compile(
            r"^(?:(?P<allow>is allow-listed in)|matches (?P<source>\w+)) bank '(?P<bank>.*)'"
            r" (?P<how>.*)$"
        ),
        _hash,
    ),
    (re.compile(r"^image posted in answer to an undress request$"), _fixed("answer_to_request")),
    (re.compile(r"^matches a child-abuse hash list$"), _fixed("child_abuse_list")),
    (re.compile(r"^a minor may be present in sexualised content$"), _fixed("minor_sexual")),
    (re.compile(r"^a minor may be present: preview withheld$"), _fixed("minor_withheld")),
    (re.compile(r"^allow-listed by moderators$"), _fixed("allow_listed")),
    (
        re.compile(r"^allow-list entry overruled \(operator list or critical\)$"),
        _fixed("allow_overruled"),
    ),
    (
        re.compile(r"^image could not be hashed: only exact digests were checked$"),
        _fixed("not_hashed"),
    ),
)


def readable_reason(reason: str, lang: str) -> str:
    """`reason` as a moderator reads it in `lang`: known shapes translated, tags dropped."""
    text = reason.strip()
    for pattern, say in _SHAPES:
        found = pattern.match(text)
        if found:
            return say(found, lang)
    return _TAGS.sub("", text)

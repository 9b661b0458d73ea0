"""The undress-request grammar: ACTION + OBJECT patterns per language, and its evidence.

The grammar reads a message as a small set of patterns rather than a list of sentences. In
each language of detectors/data/undress_lexicon.toml it looks for an ACTION next to an OBJECT:

- an undress verb on its own ("undress", "déshabille", "spogliala", "zieh sie aus");
- a removal next to a garment ("remove her clothes", "enlève sa robe", "tira a roupa"), or
  next to "everything" aimed at someone ("quítale todo", "zieh ihr alles aus");
- a dressing verb or "in/en/de" next to a sexualising garment ("put her in a bikini");
- "without"/"less" before a garment, a nude state ("make her naked", "mets-la nue");
- a sexualising modifier on a garment ("make her top see-through", "bikini più piccolo").

Evidence adds up in a logit: the strongest pattern, a third-person target, negation, and
innocent contexts (shopping, laundry, translation) that lower it. Its patterns are features of
the trained head (detectors/text_head.py), which generalises beyond the lexicon's languages;
the grammar's own reason ("undress request (fr): 'mets-la en bikini'") stays the reason a
moderator reads. `help` scores a victim or friend asking for help (help_lexicon.toml).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from detectors.base import TextInput
from detectors.text_lexicon import Hit, Lexicon
from detectors.text_normalise import Token

# Weights of the undress logit. A clear pattern with a target, an image and an image AI is
# near 0.92; the same words with no image and no AI stay below the review threshold (0.5),
# except an explicit undress verb aimed at someone ("nudify this pic of her"), which reaches it.
BIAS = -4.5
UNDRESS_VERB = 3.5  # "undress", "nudify", "déshabille", "spogliala": nothing else means that
STRONG = 3.0  # undress verb, removal of a garment, sexualising garment put on, nude state
PARTICLE = 2.5  # a preposition or particle, no verb: "in a bikini", "top off"
MODIFIED_GARMENT = 2.5  # "top transparent", "bikini smaller"
NUDE_ALONE = 2.0
WEAK = 1.5  # a sexualising garment or modifier alone ("@grok 👙", "make it see-through")
EXTRA_PATTERN = 0.5  # each further distinct pattern, at most two
TARGET = 1.0
SELF_ONLY = -1.0
AI_FLAG = 1.5
AI_IN_TEXT = 1.0
IMAGE_FLAG = 1.0
SHORT_COMMAND = 0.75  # a terse command to an image AI: "@grok bikini pls"
SHORT_WORDS = 6
NEGATED = -4.0  # "@grok don't undress her", "zieh sie nicht aus"
QUESTION = -1.5  # only on a garment or modifier alone: "@grok is her bikini from zara?"
INNOCENT_CONTEXT = {"shopping": -2.5, "laundry": -2.5, "translate": -4.0}  # quoted, not asked
HELP_PENALTY = -4.0

# Weights of the help logit: a victim or close one, a harmful image, someone who spread it.
HELP_BIAS = -4.0
HELP_WEIGHTS = {
    "victim": 1.5,
    "fake": 2.0,
    "media": 0.5,
    "harm_verb": 1.0,
    "ask": 1.5,
    "agent": 1.0,
}
HELP_FIRES = 0.5  # the review threshold of help_request in detectors/fusion.py
# A victim tells what was done (harm_verb), asks what to do (ask) or names themself as the one
# undressed ("undress me", "me déshabiller": one phrase both victim and fake). Without any of
# these, "my ex" + "nude" + "photo" is how a request to a person reads too ("who can make the
# photo of my ex naked?"): such a line stays below HELP_FIRES and the trained help head decides.
HELP_NARRATIVE = frozenset({"harm_verb", "ask"})
HELP_UNTOLD_CAP = -0.5

EXCERPT_CHARS = 60
# Pairing is quadratic in the hits of one class: past this many, the rest add nothing.
MAX_HITS_PER_CLASS = 12
# Below this an undress pattern is not worth a moderator's attention: no reason is written.
REASON_FLOOR = 0.25


@dataclass(frozen=True)
class _Pattern:
    """The evidence a rule found: its weight, the hits it rests on and a name for extras."""

    name: str
    weight: float
    hits: tuple[Hit, ...]


# Pattern names, in a fixed order: the head's one-hot features are indexed by it.
PATTERN_NAMES = (
    "undress verb",
    "remove garment",
    "remove everything",
    "garment off",
    "dress in sexual garment",
    "without garment",
    "nude state",
    "sexualised garment",
    "under garment",
    "in sexual garment",
    "sexual garment",
    "sexualising modifier",
)
FLAG_NAMES = (
    "negated",
    "target",
    "self only",
    "question",
    "shopping",
    "laundry",
    "translate",
    "ai in text",
    "short",
)
FEATURE_NAMES = (
    ("text evidence", "pattern weight", "extra patterns", "help", "help classes", "tokens")
    + FLAG_NAMES
    + PATTERN_NAMES
)


@dataclass
class GrammarResult:
    """What the grammar found in one message (or window)."""

    undress: float  # the grammar's own score, context included (the old detector's score)
    help: float
    tokens: list[Token]
    reasons: list[str] = field(default_factory=list)
    extras: dict[str, object] = field(default_factory=dict)
    features: list[float] = field(default_factory=list)  # FEATURE_NAMES, context-free
    evidence: float = 0.0  # the grammar's score for the text alone (no context)
    span: tuple[int, int] | None = None  # the strongest pattern's characters in the text


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def analyse(
    item: TextInput,
    lexicon: Lexicon,
    tokens: list[Token] | None = None,
    hits: list[Hit] | None = None,
) -> GrammarResult:
    """Run the grammar on one message: scores, reasons and the head's grammar features.

    `tokens`, when given, are a window of the message's tokens (spans in `item.text`), and
    `hits` the lexicon's hits on them, when already found."""
    if tokens is None:
        tokens = lexicon.normaliser.tokens(item.text)
    all_hits = lexicon.match(tokens) if hits is None else hits
    hits = [h for h in all_hits if h.cls not in HELP_WEIGHTS]
    help_hits = [h for h in all_hits if h.cls in HELP_WEIGHTS]
    patterns = _patterns(hits, len(tokens))

    help_logit, help_classes = _help_logit(help_hits, bool(patterns))
    help_score = _sigmoid(help_logit)
    undress_logit, why = _undress_logit(item, tokens, hits, patterns)
    bare_logit, _ = _undress_logit(TextInput(item.text), tokens, hits, patterns)
    if help_score >= HELP_FIRES:
        undress_logit += HELP_PENALTY
        bare_logit += HELP_PENALTY
        why.append("lowered: reads as a help request")
    undress_score = _sigmoid(undress_logit) if patterns else 0.0
    evidence = _sigmoid(bare_logit) if patterns else 0.0

    result = GrammarResult(undress_score, help_score, tokens, evidence=evidence)
    if patterns:
        best_hits = patterns[0].hits
        result.span = (
            tokens[min(h.first for h in best_hits)].start,
            tokens[max(h.last for h in best_hits)].end,
        )
    if patterns and undress_score >= REASON_FLOOR:
        best = patterns[0]
        lang = _language(best.hits, hits, lexicon.languages)
        excerpt = _excerpt(item.text, tokens, best.hits)
        raised = [w for w in why if not w.startswith("lowered")]
        lowered = [w.removeprefix("lowered: ") for w in why if w.startswith("lowered")]
        detail = f" {', '.join(raised)}" if raised else ""
        detail += f"; lowered: {', '.join(lowered)}" if lowered else ""
        result.reasons.append(f"undress request ({lang}): '{excerpt}'{detail}")
        result.extras.update({"language": lang, "pattern": best.name})
    if help_score >= HELP_FIRES:
        lang = _language(tuple(help_hits), help_hits, lexicon.languages)
        excerpt = _excerpt(item.text, tokens, tuple(help_hits))
        result.reasons.append(
            f"help request ({lang}): '{excerpt}' — may be a victim asking for help"
            f" ({', '.join(sorted(help_classes))})"
        )
    result.features = _features(tokens, hits, patterns, evidence, help_score, help_classes)
    return result


def _features(
    tokens: list[Token],
    hits: list[Hit],
    patterns: list[_Pattern],
    evidence: float,
    help_score: float,
    help_classes: set[str],
) -> list[float]:
    """The context-free grammar features, in FEATURE_NAMES order, each in [0, 1]."""
    classes = {hit.cls for hit in hits}
    names = {p.name for p in patterns}
    best = patterns[0] if patterns else None
    words = [t for t in tokens if not t.mention]
    flags = {
        "negated": float(best is not None and _negated(best, hits)),
        "target": float("target" in classes),
        "self only": float("self" in classes and "target" not in classes),
        "question": float("question" in classes),
        "shopping": float("shopping" in classes),
        "laundry": float("laundry" in classes),
        "translate": float("translate" in classes),
        "ai in text": float("ai" in classes),
        "short": float(0 < len(words) <= SHORT_WORDS),
    }
    return [
        evidence,
        best.weight / UNDRESS_VERB if best else 0.0,
        min(len(names) - 1, 3) / 3 if names else 0.0,
        help_score,
        min(len(help_classes), 4) / 4,
        min(len(tokens), 60) / 60,
        *(flags[name] for name in FLAG_NAMES),
        *(float(name in names) for name in PATTERN_NAMES),
    ]


def _patterns(hits: list[Hit], n_tokens: int) -> list[_Pattern]:
    """Every grammar pattern present, strongest first (ties keep rule order)."""
    by: dict[str, list[Hit]] = {}
    for hit in hits:
        found_cls = by.setdefault(hit.cls, [])
        if len(found_cls) < MAX_HITS_PER_CLASS:  # a flood of one word is not more evidence
            found_cls.append(hit)

    def near(a: str, b: str, window: int, ordered: bool = False) -> tuple[Hit, ...] | None:
        for x in by.get(a, ()):
            for y in by.get(b, ()):
                # A pattern is grammar of one language: "mets" (fr) + "costume" (it) is not one.
                if x.lang != y.lang or x.same_span(y) or x.gap_to(y) > window:
                    continue
                if ordered and y.first <= x.last:
                    continue
                return (x, y)
        return None

    found: list[_Pattern] = []

    def add(name: str, weight: float, pair: tuple[Hit, ...] | None) -> None:
        if pair:
            found.append(_Pattern(name, weight, pair))

    add("undress verb", UNDRESS_VERB, tuple(by.get("undress", ())[:1]))
    add("remove garment", STRONG, near("remove", "garment", 4))
    # "quítale todo", "zieh ihr alles aus": everything, taken off someone, is all their clothes;
    # "remove everything behind her" or "quítale todo el maquillaje" name another object, so
    # "everything" must end the message or be followed by the target or the removal itself.
    removal = near("remove", "everything", 3)
    if removal and any(t.gap_to(h) <= 2 for h in removal for t in by.get("target", ())):
        after = max(h.last for h in removal if h.cls == "everything") + 1
        closing = {
            i
            for h in hits
            if h.cls in ("target", "remove", "remove_particle")
            for i in range(h.first, h.last + 1)
        }
        if after >= n_tokens or after in closing:
            add("remove everything", STRONG, removal)
    add("garment off", PARTICLE, near("garment", "remove_particle", 1, ordered=True))
    add("dress in sexual garment", STRONG, near("dress", "sexy_garment", 4))
    add("without garment", STRONG, near("without", "garment", 3, ordered=True))
    nude_with_action = near("dress", "nude", 3) or near("target", "nude", 3)
    add("nude state", STRONG, nude_with_action)
    add("sexualised garment", MODIFIED_GARMENT, near("modifier", "garment", 3))
    add("under garment", MODIFIED_GARMENT, near("under", "garment", 2, ordered=True))
    add("in sexual garment", PARTICLE, near("dress_particle", "sexy_garment", 2, ordered=True))
    if not nude_with_action:
        add("nude state", NUDE_ALONE, tuple(by.get("nude", ())[:1]))
    add("sexual garment", WEAK, tuple(by.get("sexy_garment", ())[:1]))
    # A modifier alone sexualises a person ("make her wet"), not a thing ("the wet road").
    add("sexualising modifier", WEAK, near("modifier", "target", 3))
    add("sexualising modifier", WEAK, tuple(by.get("sheer", ())[:1]))
    found.sort(key=lambda p: -p.weight)  # stable: equal weights keep the order above
    return found


def _undress_logit(
    item: TextInput, tokens: list[Token], hits: list[Hit], patterns: list[_Pattern]
) -> tuple[float, list[str]]:
    """The undress logit and the context phrases that explain it."""
    why: list[str] = []
    if not patterns:
        return BIAS, why
    classes = {hit.cls for hit in hits}
    # Further patterns count only on other words: "put her in a bikini" is one piece of
    # evidence even though three rules see it.
    used = {i for hit in patterns[0].hits for i in range(hit.first, hit.last + 1)}
    distinct = {
        p.name
        for p in patterns[1:]
        if not any(i in used for hit in p.hits for i in range(hit.first, hit.last + 1))
    } - {patterns[0].name}
    logit = BIAS + patterns[0].weight + EXTRA_PATTERN * min(len(distinct), 2)
    if _negated(patterns[0], hits):
        logit += NEGATED
        why.append("lowered: negated")
    weak = patterns[0].weight <= WEAK
    # A target makes an action an edit of a person; a bare garment word gains nothing from it.
    if "target" in classes and not weak:
        logit += TARGET
    elif "self" in classes and "target" not in classes:
        logit += SELF_ONLY
    if weak and "question" in classes:
        logit += QUESTION
        why.append("lowered: a question")
    ai_in_text = "ai" in classes
    if item.addresses_image_ai:
        logit += AI_FLAG
        why.append("addressed to an image AI")
    elif ai_in_text:
        logit += AI_IN_TEXT
        why.append("naming an image AI")
    if item.replies_to_image:
        logit += IMAGE_FLAG
        why.append("replying to an image")
    ai_tokens = {i for hit in hits if hit.cls == "ai" for i in range(hit.first, hit.last + 1)}
    words = [t for i, t in enumerate(tokens) if not t.mention and i not in ai_tokens]
    if (item.addresses_image_ai or ai_in_text) and len(words) <= SHORT_WORDS:
        logit += SHORT_COMMAND
    for context, weight in INNOCENT_CONTEXT.items():
        if context in classes:
            logit += weight
            why.append(f"lowered: {context} context")
    return logit, why


def _negated(pattern: _Pattern, hits: list[Hit]) -> bool:
    """A negation just before the pattern ("don't undress") or inside it ("zieh sie nicht aus")."""
    first = min(h.first for h in pattern.hits)
    last = max(h.last for h in pattern.hits)
    for hit in hits:
        if hit.cls != "negation" or any(hit.same_span(h) for h in pattern.hits):
            continue
        if first - 3 <= hit.first <= last:
            return True
    return False


def _help_logit(hits: list[Hit], undress_words: bool) -> tuple[float, set[str]]:
    """The best help logit over languages, and the classes it rests on.

    Classes add up within one language only, so that French "ma" (my) does not make a victim
    of an Italian "ma" (but). Undress wording counts as a harmful image only in a narrative
    (someone did it, or the writer asks what to do): "nudify this pic of my classmate" is a
    request, "someone asked grok to undress me, help" is a victim speaking.
    """
    by_lang: dict[str, set[str]] = {}
    for hit in hits:
        by_lang.setdefault(hit.lang, set()).add(hit.cls)
    fakes = {(h.lang, h.first, h.last) for h in hits if h.cls == "fake"}
    undone = {h.lang for h in hits if h.cls == "victim" and (h.lang, h.first, h.last) in fakes}
    best: tuple[float, set[str]] = (HELP_BIAS, set())
    for lang, classes in by_lang.items():
        told = bool(classes & HELP_NARRATIVE) or lang in undone
        if undress_words and classes & {"harm_verb", "ask", "agent"}:
            classes = classes | {"fake"}
        logit = HELP_BIAS + sum(HELP_WEIGHTS.get(c, 0.0) for c in classes)
        if not told:
            logit = min(logit, HELP_UNTOLD_CAP)
        if logit > best[0]:
            best = (logit, classes)
    return best


def _language(best: tuple[Hit, ...], hits: Sequence[Hit], order: list[str]) -> str:
    """The language with most hits on the deciding tokens, then in the message, then file order."""
    spans = {(h.first, h.last) for h in best}
    on_best = Counter(h.lang for h in hits if (h.first, h.last) in spans)
    overall = Counter(h.lang for h in hits)
    return max(order, key=lambda lang: (on_best[lang], overall[lang], -order.index(lang)))


def _excerpt(text: str, tokens: list[Token], hits: tuple[Hit, ...]) -> str:
    """The original words the hits cover, one line, cut to EXCERPT_CHARS."""
    if not hits:
        return ""
    start = tokens[min(h.first for h in hits)].start
    end = tokens[max(h.last for h in hits)].end
    quoted = " ".join(text[start:end].split())
    return quoted if len(quoted) <= EXCERPT_CHARS else quoted[: EXCERPT_CHARS - 1] + "…"

"""Which authors are image-generating AI apps (Grok-like bots): their image answers to undress
requests are the harm, so the core scans them while it ignores other bots (policy.exempt).

One rule for every platform: a bot is an AI app when its id or one of its names is listed, or
when it posts an image in answer to a message (what such apps do when asked to edit a photo).
Simple and explainable; a false positive only makes the core look at that bot's image.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# Image-generating apps people ask to "undress" someone, matched case-insensitively against a
# bot's names (user name, display name, Slack bot profile); deployers add ids and names.
DEFAULT_NAMES = frozenset(
    {
        "grok",
        "midjourney",
        "niji",
        "dall-e",
        "stable diffusion",
        "leonardo",
        "bluewillow",
        "pixai",
        "gemini",
        "chatgpt",
        "copilot",
    }
)


@dataclass(frozen=True)
class AiApps:
    ids: frozenset[str] = frozenset()
    names: frozenset[str] = DEFAULT_NAMES
    extra_names: frozenset[str] = field(default_factory=frozenset)

    def all_names(self) -> frozenset[str]:
        return frozenset(n.lower() for n in self.names | self.extra_names)

    def listed(self, ids: Iterable[str], names: Iterable[str | None]) -> bool:
        """Whether any of a bot's ids (user, bot, app id) or names is listed."""
        known = self.all_names()
        return bool(self.ids & {str(i) for i in ids if i}) or any(
            (name or "").lower() in known for name in names
        )

    def is_ai_app(
        self,
        *,
        is_bot: bool,
        ids: Iterable[str],
        names: Iterable[str | None],
        posts_image_in_answer: bool = False,
    ) -> bool:
        return is_bot and (self.listed(ids, names) or posts_image_in_answer)

    @classmethod
    def from_setting(cls, value: str) -> AiApps:
        """VEILLE_AI_APPS: each comma-separated entry counts as an id and as a name."""
        entries = frozenset(part.strip() for part in value.split(",") if part.strip())
        return cls(ids=entries, extra_names=entries)

    def mentioned_in(self, text: str) -> bool:
        """The text addresses one of the apps by name (`@grok …`)."""
        lowered = text.lower()
        return any(f"@{name}" in lowered for name in self.all_names())

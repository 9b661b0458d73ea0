"""The one AI-app rule both adapters use: listed ids or names, or a bot posting an image in
answer to a message; people are never AI apps."""

from __future__ import annotations

from bot.core.ai_apps import AiApps


def test_listed_names_and_ids_and_image_answers() -> None:
    apps = AiApps(ids=frozenset({"B42"}), extra_names=frozenset({"UndressBot"}))
    assert apps.is_ai_app(is_bot=True, ids=["U1"], names=["Grok"])  # a default name
    assert apps.is_ai_app(is_bot=True, ids=["B42"], names=["anything"])
    assert apps.is_ai_app(is_bot=True, ids=[], names=[None, "undressbot"])
    assert not apps.is_ai_app(is_bot=True, ids=["B7"], names=["Deploy notifier"])
    assert apps.is_ai_app(
        is_bot=True, ids=["B7"], names=["Deploy notifier"], posts_image_in_answer=True
    )
    assert not apps.is_ai_app(is_bot=False, ids=["B42"], names=["Grok"], posts_image_in_answer=True)


def test_mentions_by_name() -> None:
    assert AiApps().mentioned_in("hey @Grok put her in a bikini")
    assert not AiApps().mentioned_in("grok is a word")

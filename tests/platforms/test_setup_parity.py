"""The two setup wizards offer the same settings: the same digest schedules, sensitivities and
languages with the same labels (bot/workspace_settings.py), and a value the core cannot use is
refused the same way whichever wizard sent it."""

# ruff: noqa: F811  (pytest fixtures imported from tests/core/conftest.py are parameters here)
from __future__ import annotations

from typing import Any

import pytest

from bot.core.errors import VeilleError
from bot.core.i18n import LOCALES, t
from bot.core.service import Veille
from bot.core.types import Platform, SetupInput
from bot.platforms.discord import setup as discord_wizard
from bot.platforms.slack import setup as slack_modal
from bot.workspace_settings import (
    DIGEST_FREQUENCIES,
    SENSITIVITIES,
    compose_schedule,
    frequency_label,
    sensitivity_label,
)
from tests.core.conftest import ADMIN, WS, clock, colour, gateway, veille  # noqa: F401

# The core's fixtures live on the session loop (tests/core): so do these tests.
pytestmark = pytest.mark.asyncio(loop_scope="session")

SLACK_TEAM = "T-parity"


def _slack_block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def _slack_options(view: dict[str, Any], block_id: str) -> list[tuple[str, str]]:
    return [
        (o["value"], o["text"]["text"]) for o in _slack_block(view, block_id)["element"]["options"]
    ]


def _slack_state(**chosen: str) -> dict[str, Any]:
    """A view_submission's state.values, as Slack sends it."""
    return {
        "values": {
            "safety": {"value": {"type": "conversations_select", "selected_conversation": "CSAFE"}},
            "sensitivity": {
                "value": {
                    "type": "static_select",
                    "selected_option": {"value": chosen["sensitivity"]},
                }
            },
            "digest": {
                "value": {
                    "type": "static_select",
                    "selected_option": {"value": chosen["frequency"]},
                }
            },
            "digest_time": {"value": {"type": "timepicker", "selected_time": chosen["time"]}},
            "timezone": {"value": {"type": "plain_text_input", "value": "Europe/Paris"}},
            "language": {"value": {"type": "static_select", "selected_option": {"value": "fr"}}},
        }
    }


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("at", ["09:00", "18:00"])
async def test_both_wizards_offer_the_same_schedules(locale: str, at: str) -> None:
    slack = slack_modal.setup_view(
        locale, slack_modal.SetupValues(digest_schedule=f"daily@{at}"), [], can_delete=False
    )
    frequencies = _slack_options(slack, "digest")
    assert [value for value, _ in frequencies] == list(DIGEST_FREQUENCIES)
    assert _slack_block(slack, "digest_time")["element"]["initial_time"] == at

    wizard = discord_wizard.SetupWizard(
        discord_wizard.SetupChoices(digest_schedule=f"daily@{at}", digest_time=at), locale
    )
    step = discord_wizard.DigestStep(wizard)
    offered = [(o.value, o.label) for o in step.schedule.options]
    # The same schedules: each Slack frequency at the time chosen, in the same order...
    assert [value for value, _ in offered] == [compose_schedule(f, at) for f, _ in frequencies]
    # ...with the same words (Discord names the time in the label, Slack beside it).
    for (_, discord_label), (_, slack_label) in zip(offered, frequencies, strict=True):
        assert discord_label.startswith(slack_label)
    assert [o.value for o in step.time.options][:2] == ["00:00", "01:00"]
    assert [o.value for o in step.schedule.options if o.default] == [f"daily@{at}"]

    # What each wizard then stores for "weekly at that time" is the same string.
    values = slack_modal.read_values(
        _slack_state(sensitivity="strict", frequency="weekly:mon", time=at)
    )
    assert values.digest_schedule == f"weekly:mon@{at}" == offered[1][0]


async def test_both_wizards_offer_the_same_sensitivities_and_languages() -> None:
    slack = slack_modal.setup_view("fr", slack_modal.SetupValues(), [], can_delete=False)
    step = discord_wizard.OptionsStep(
        discord_wizard.SetupWizard(discord_wizard.SetupChoices(), "fr")
    )
    assert _slack_options(slack, "sensitivity") == [
        (o.value, o.label) for o in step.sensitivity.options
    ]
    assert _slack_options(slack, "sensitivity") == [
        (s, t(sensitivity_label(s), "fr")) for s in SENSITIVITIES
    ]
    assert _slack_options(slack, "language") == [(o.value, o.label) for o in step.language.options]
    assert [v for v, _ in _slack_options(slack, "language")] == list(LOCALES)
    assert t(frequency_label("off"), "fr") == "Pas de bilan"


async def _refusal(
    veille: Veille, platform: str, external_id: str, setup: SetupInput
) -> VeilleError:  # noqa: F811
    with pytest.raises(VeilleError) as refused:
        await veille.save_setup(platform, external_id, ADMIN, setup)
    return refused.value


@pytest.mark.parametrize(("sensitivity", "time"), [("extreme", "09:00"), ("strict", "25:00")])
async def test_a_bad_value_is_refused_the_same_way_from_either_wizard(
    veille: Veille,
    sensitivity: str,
    time: str,  # noqa: F811
) -> None:
    from_discord = discord_wizard.setup_input(
        discord_wizard.SetupChoices(
            safety_channel_id="CSAFE",
            quarantine_channel_id="CQUAR",
            sensitivity=sensitivity,
            digest_schedule=compose_schedule("weekly:mon", time),
            timezone="Europe/Paris",
            locale="fr",
        )
    )
    from_slack = slack_modal.setup_input(
        slack_modal.read_values(
            _slack_state(sensitivity=sensitivity, frequency="weekly:mon", time=time)
        )
    )
    discord_refusal = await _refusal(veille, Platform.DISCORD, WS, from_discord)
    slack_refusal = await _refusal(veille, Platform.SLACK, SLACK_TEAM, from_slack)
    assert discord_refusal.code == slack_refusal.code == "invalid_setup"
    assert str(discord_refusal) == str(slack_refusal)
    assert ("extreme" in sensitivity) == ("relaxed, standard, strict" in str(slack_refusal))
    stored = await veille.workspace(Platform.DISCORD, WS)
    assert stored.sensitivity == "standard" and stored.locale == "en"  # nothing was saved


async def test_what_either_wizard_collects_is_accepted(veille: Veille) -> None:  # noqa: F811
    from_slack = slack_modal.setup_input(
        slack_modal.read_values(_slack_state(sensitivity="relaxed", frequency="off", time="07:00"))
    )
    reply = await veille.save_setup(Platform.SLACK, SLACK_TEAM, ADMIN, from_slack)
    assert reply.ok
    stored = await veille.workspace(Platform.SLACK, SLACK_TEAM)
    assert (stored.sensitivity, stored.digest_schedule, stored.locale) == ("relaxed", "off", "fr")

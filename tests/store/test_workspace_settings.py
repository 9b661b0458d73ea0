"""Workspace settings are declared once (bot/workspace_settings.py): the table's defaults, the
core's types and policy, and the digest schedule grammar all agree with the declarations, and
the store reads them without importing the core."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest

from bot import workspace_settings as ws
from bot.core import policy
from bot.core.digest.schedule import parse_schedule
from bot.core.types import SetupInput, WorkspaceView
from bot.store.models import Workspace


def test_the_table_defaults_are_the_declared_ones() -> None:
    row = Workspace(platform="discord", external_id="1")
    for name in (
        "locale",
        "timezone",
        "sensitivity",
        "digest_schedule",
        "retention_days",
        "sla_hours",
        "safety_channel_id",
        "quarantine_channel_id",
    ):
        assert getattr(row, name) == ws.SETTINGS[name].default, name
    for name in ("moderator_role_ids", "moderator_user_ids", "admin_role_ids", "allow_role_ids"):
        assert getattr(row, name) == list(ws.SETTINGS[name].default), name
    assert row.actions == {a: ws.SETTINGS[a].default for a in ws.ACTIONS}
    assert row.created_at.tzinfo is not None  # aware UTC, as the core's clock gives


def test_stored_defaults_are_unchanged() -> None:
    """Changing one changes what is stored: that needs an Alembic revision, not just an edit."""
    assert {n: s.default for n, s in ws.SETTINGS.items() if s.default not in (None, ())} == {
        "locale": "en",
        "timezone": "UTC",
        "sensitivity": "standard",
        "delete": True,
        "notify": True,
        "timeout": False,
        "digest_schedule": "daily@09:00",
        "retention_days": 30,
        "sla_hours": 24,
    }


def test_the_core_types_carry_exactly_the_declared_settings() -> None:
    setup = {f.name for f in fields(SetupInput)} - {"channel_sensitivity"}
    assert setup == set(ws.SETTINGS)
    view = {f.name for f in fields(WorkspaceView)}
    identity = {"id", "platform", "external_id", "name", "setup_completed", "actions"}
    assert view - identity == set(ws.SETTINGS) - set(ws.ACTIONS)


def test_every_sensitivity_has_its_policy_shift() -> None:
    assert set(policy.SENSITIVITY_SHIFT) == set(ws.SENSITIVITIES)
    assert policy.effective_sensitivity("nonsense", None) == ws.DEFAULT_SENSITIVITY


def test_the_store_imports_nothing_from_the_core() -> None:
    code = (
        "import sys, bot.store.models, bot.workspace_settings; "
        "print(sorted(m for m in sys.modules if m.startswith(('bot.core', 'detectors'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "spec",
    [
        "daily@09:00",
        "weekly:mon@08:30",
        "weekly:sun@7:05",
        "off",
        "",
        "cron:0 18 * * 0",
        "Daily@23:59",
    ],
)
def test_schedules_the_grammar_accepts_the_digest_can_run(spec: str) -> None:
    ws.check_digest_schedule(spec)
    parse_schedule(spec, "Europe/Paris")


@pytest.mark.parametrize(
    "spec", ["daily@25:00", "weekly:funday@09:00", "cron:* * *", "hourly", "daily", "weekly:mon"]
)
def test_malformed_schedules_are_refused_with_a_catalogue_key(spec: str) -> None:
    with pytest.raises(ws.SettingError) as refused:
        ws.check_digest_schedule(spec)
    assert refused.value.key == "settings.invalid.digest_schedule"
    assert isinstance(refused.value, ValueError)


def test_wizard_schedules_compose_and_split() -> None:
    assert ws.compose_schedule("weekly:mon", "08:30") == "weekly:mon@08:30"
    assert ws.compose_schedule("off", "08:30") == "off"
    assert ws.split_digest_schedule("weekly:mon@08:30") == ("weekly:mon", "08:30")
    assert ws.split_digest_schedule("off") == ("off", ws.DEFAULT_DIGEST_TIME)
    assert ws.split_digest_schedule("cron:0 18 * * 0") == ("daily", "09:00")
    assert ws.digest_options("18:00") == ("daily@18:00", "weekly:mon@18:00", "off")
    assert ws.DEFAULT_DIGEST_SCHEDULE in ws.digest_options()
    assert len(ws.DIGEST_TIMES) < 25  # one Discord select, with room for a current odd time


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("sensitivity", "extreme", "settings.invalid.sensitivity"),
        ("locale", "xx", "settings.invalid.locale"),
        ("timezone", "Europe/Atlantis", "settings.invalid.timezone"),
        ("retention_days", 0, "settings.invalid.number"),
        ("sla_hours", 3651, "settings.invalid.number"),
        ("retention_days", True, "settings.invalid.number"),
    ],
)
def test_bad_values_are_refused(name: str, value: object, key: str) -> None:
    with pytest.raises(ws.SettingError) as refused:
        ws.check_setting(name, value, locales=("en", "fr"))
    assert refused.value.key == key and refused.value.setting == name


def test_good_values_and_none_pass() -> None:
    for name, setting in ws.SETTINGS.items():
        ws.check_setting(name, None, locales=("en",))
        if setting.default not in (None, ()):
            ws.check_setting(name, setting.default, locales=("en",))
    for value in ws.TIMEZONES:
        ws.check_timezone(value)

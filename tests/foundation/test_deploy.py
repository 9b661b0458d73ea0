"""The compose file agrees with what `veille init` and .env.example write: the checkout's
relative SQLite path in ../.env must not reach the container, whose database lives in /data."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_compose_pins_the_database_and_data_dir_into_the_volume() -> None:
    service = yaml.safe_load((DEPLOY / "compose.yml").read_text("utf-8"))["services"]["veille"]
    assert service["env_file"] == "../.env"
    environment = service["environment"]  # compose: environment wins over env_file
    assert environment["VEILLE_DATA_DIR"] == "/data"
    assert environment["VEILLE_DATABASE_URL"].endswith(":-sqlite+aiosqlite:////data/veille.db}")
    assert any(volume.endswith(":/data") for volume in service["volumes"])
    example = (DEPLOY / ".env.example").read_text("utf-8")
    assert "VEILLE_DATABASE_URL=sqlite+aiosqlite:///./veille.db" in example  # what it overrides

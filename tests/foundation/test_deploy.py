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


def test_the_scale_compose_runs_one_gateway_and_workers_on_postgresql() -> None:
    services = yaml.safe_load((DEPLOY / "compose.scale.yml").read_text("utf-8"))["services"]
    assert services["gateway"]["environment"]["VEILLE_ROLE"] == "gateway"
    assert services["worker"]["environment"]["VEILLE_ROLE"] == "worker"
    assert "ports" not in services["worker"]  # a worker serves nothing: scale it freely
    for name in ("migrate", "gateway", "worker"):
        url = services[name]["environment"]["VEILLE_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://") and url.endswith("@postgres/veille")
    assert "db upgrade" in " ".join(services["migrate"]["command"])


def test_the_systemd_template_runs_the_role_its_instance_names() -> None:
    """What systemd runs for veille@gateway, veille@worker and veille@worker-2: its specifiers
    (%i, %%) and $$ undone as systemd does, the binary replaced by echo."""
    import shlex
    import subprocess

    unit = (DEPLOY / "veille@.service").read_text("utf-8")
    [line] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    for instance, role in (("gateway", "gateway"), ("worker", "worker"), ("worker-2", "worker")):
        command = (
            line.removeprefix("ExecStart=")
            .replace("%i", instance)
            .replace("%%", "%")
            .replace("$$", "$")
            .replace("/opt/veille/.venv/bin/veille", "echo veille")
        )
        ran = subprocess.run(shlex.split(command), capture_output=True, text=True, check=True)
        assert ran.stdout.strip() == f"veille run --role {role}"

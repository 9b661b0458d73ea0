"""`veille doctor` names what is wrong and how to fix it, and is happy once it is fixed."""

from __future__ import annotations

from pathlib import Path

from tests.foundation.test_cli_basics import veille


def test_doctor_lists_problems_with_fixes_then_passes(workdir: Path) -> None:
    env = {"VEILLE_DETECTORS": "hashes,text", "COLUMNS": "250"}
    broken = veille("doctor", "--offline", cwd=workdir, env=env)
    assert broken.returncode == 2
    for finding in ("VEILLE_SECRET_KEY", "no Discord or Slack token", "veille db upgrade"):
        assert finding in broken.stdout

    assert veille("init", "-y", "--discord-token", "x" * 40, cwd=workdir).returncode == 0
    assert veille("db", "upgrade", cwd=workdir).returncode == 0
    healthy = veille("doctor", "--offline", cwd=workdir, env=env)
    assert healthy.returncode == 0, healthy.stdout
    assert "hashes@" in healthy.stdout and "text@" in healthy.stdout


def test_doctor_reports_a_missing_clip_checkpoint(workdir: Path) -> None:
    env = {
        "VEILLE_DETECTORS": "clip",
        "VEILLE_CLIP_PRETRAINED": str(workdir / "missing.pt"),
        "COLUMNS": "250",
    }
    result = veille("doctor", "--offline", cwd=workdir, env=env)
    assert result.returncode == 2
    assert "VEILLE_CLIP_PRETRAINED" in result.stdout

"""The CLI entry point and the settings roots."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from geodistill import settings
from geodistill.cli import SUBCOMMANDS, build_parser, main

REPO = Path(__file__).resolve().parent.parent


def test_help_lists_every_subcommand():
    result = subprocess.run(
        [sys.executable, "-m", "geodistill", "--help"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for name in ("synth", "check-data", "train", "evaluate", "predict", "bench"):
        assert name in result.stdout
    assert set(SUBCOMMANDS) == {"synth", "check-data", "train", "evaluate", "predict", "bench"}


def test_every_subcommand_is_implemented():
    parser = build_parser()
    for name in SUBCOMMANDS:
        args = parser.parse_args([name] + _minimal_args(name))
        assert not getattr(args, "_missing", False), f"subcommand {name} has no module"


def _minimal_args(name: str) -> list[str]:
    return {
        "synth": ["--out", "x"],
        "check-data": ["x"],
        "train": ["--config", "x.yaml"],
        "evaluate": ["--checkpoint", "x", "--data", "x"],
        "predict": ["--pano", "p.jpg", "--sat", "s.png", "--mpp", "0.1"],
        "bench": [],
    }[name]


def test_no_subcommand_prints_help(capsys):
    assert main([]) == 0
    assert "synth" in capsys.readouterr().out


def test_roots_follow_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(tmp_path / "ck"))
    monkeypatch.delenv("GEODISTILL_ASSETS", raising=False)
    assert settings.checkpoints_dir() == (tmp_path / "ck").resolve()
    assert settings.assets_dir() == settings.REPO_ROOT / "assets"
    assert settings.resolve_path("sub/x", tmp_path) == tmp_path / "sub" / "x"
    assert settings.resolve_path("/abs/x", tmp_path) == Path("/abs/x")
    assert settings.resolve_path("", tmp_path) is None

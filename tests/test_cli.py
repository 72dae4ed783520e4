"""The CLI entry point and the settings roots."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from geodistill import settings
from geodistill.cli import SUBCOMMANDS, build_parser, main

REPO = Path(__file__).resolve().parent.parent


def test_help_lists_every_subcommand():
    result = subprocess.run(
        [sys.executable, "-m", "geodistill", "--help"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    names = {"synth", "synth-area", "make-dataset", "check-data", "train", "adapt", "evaluate", "predict", "calibrate",
             "refine", "bench"}
    for name in names:
        assert name in result.stdout
    assert set(SUBCOMMANDS) == names


def test_every_subcommand_is_implemented():
    parser = build_parser()
    for name in SUBCOMMANDS:
        args = parser.parse_args([name] + _minimal_args(name))
        assert not getattr(args, "_missing", False), f"subcommand {name} has no module"


def _minimal_args(name: str) -> list[str]:
    return {
        "synth": ["--out", "x"],
        "synth-area": ["--out", "x"],
        "make-dataset": ["--ortho", "a.tif", "--panos", "p", "--out", "x"],
        "adapt": ["--data", "x"],
        "check-data": ["x"],
        "train": ["--config", "x.yaml"],
        "evaluate": ["--checkpoint", "x", "--data", "x"],
        "predict": ["--pano", "p.jpg", "--sat", "s.png", "--mpp", "0.1"],
        "calibrate": ["--checkpoint", "x", "--data", "x"],
        "refine": ["--ortho", "a.tif", "--panos", "p", "--out", "r.geojson"],
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


def test_a_negative_coordinate_pair_is_the_value_of_the_option_before_it():
    from geodistill.cli import attach_negative_values

    assert attach_negative_values(["predict", "--sat-latlon", "-33.86,151.21", "--gt-latlon", "-.5, 3"]) == [
        "predict", "--sat-latlon=-33.86,151.21", "--gt-latlon=-.5, 3"]
    assert attach_negative_values(["--fov-center", "-30", "-v", "-1,2"]) == ["--fov-center", "-30", "-v", "-1,2"]
    assert attach_negative_values(["--gt-px=-1,2", "--x", "--y"]) == ["--gt-px=-1,2", "--x", "--y"]
    args = build_parser().parse_args(attach_negative_values(
        ["predict", "--pano", "p", "--sat", "s", "--mpp", "1", "--sat-latlon", "-33.86,-151.21"]))
    assert args.sat_latlon == "-33.86,-151.21"
    args = build_parser().parse_args(attach_negative_values(
        ["predict", "--pano", "p", "--sat", "s", "--mpp", "1", "--gt-px", "-1.5,2", "--fov", "90", "--fov-center",
         "-45", "--heading-prior", "-30"]))
    assert (args.gt_px, args.fov_center, args.heading_prior) == ("-1.5,2", -45.0, -30.0)


@pytest.mark.parametrize("argv, level", [
    ([], logging.WARNING),
    (["-v"], logging.INFO),
    (["-vv"], logging.DEBUG),
    (["-v", "-v", "-v"], logging.DEBUG),
])
def test_verbosity_before_or_after_every_subcommand(argv, level):
    from geodistill.cli import log_level

    parser = build_parser()
    for name in SUBCOMMANDS:
        assert log_level(parser.parse_args(argv + [name] + _minimal_args(name))) == level
        assert log_level(parser.parse_args([name] + _minimal_args(name) + argv)) == level
    assert log_level(parser.parse_args(["-v", "bench", "-v"])) == logging.DEBUG


def test_commands_print_warnings_only_unless_asked():
    """Informational log lines appear with -v, not by default."""
    command = [sys.executable, "-m", "geodistill", "check-data", str(REPO / "assets" / "samples"), "--images", "none"]
    quiet = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
    verbose = subprocess.run(command + ["-v"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert quiet.returncode == verbose.returncode == 0, quiet.stderr + verbose.stderr
    assert "verdict: OK" in quiet.stdout and " INFO " not in quiet.stderr
    assert " INFO geodistill.data.checker: checking NewYork" in verbose.stderr


def test_train_keeps_its_epoch_lines_at_the_default_verbosity(monkeypatch):
    """train's progress (engine INFO: epoch lines, resuming) shows without -v; other INFO messages do not."""
    from geodistill.engine import loop
    from geodistill.errors import GeoDistillError

    seen = {}

    def fake_train(config, run_dir=None, resume=False, force=False):
        seen["epoch lines"] = logging.getLogger("geodistill.engine.loop").isEnabledFor(logging.INFO)
        seen["other info"] = logging.getLogger("geodistill.inference").isEnabledFor(logging.INFO)
        raise GeoDistillError("stopped before training")

    monkeypatch.setattr(loop, "train", fake_train)
    try:
        assert main(["train", "--config", str(REPO / "training" / "configs" / "tiny.yaml")]) == 2
    finally:
        logging.getLogger("geodistill.engine").setLevel(logging.NOTSET)
    assert seen == {"epoch lines": True, "other info": False}

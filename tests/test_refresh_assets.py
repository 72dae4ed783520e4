"""training/refresh_assets.py, make_teaser.py and screenshots.py: what is cheap to check without rebuilding the
assets (the lead runs the whole refresh after shipping new checkpoints)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "training" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def refresh():
    return _script("refresh_assets")


@pytest.fixture(scope="module")
def screenshots():
    return _script("screenshots")


def _digest(paths) -> dict:
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}


def test_dry_run_finds_every_text_it_rewrites_and_changes_nothing(refresh, capsys):
    watched = [ROOT / "README.md", ROOT / "assets" / "README.md", ROOT / "docs" / "synthetic-world.md",
               ROOT / "docs" / "teaser.png", ROOT / "training" / "golden_samples.json"]
    before = _digest(watched)
    assert refresh.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    for step in refresh.STEPS:
        assert f"[refresh] {step}: planned" in out
    assert "synth --out" in out and "--seed 7 --tier hard" in out
    assert "geodistill predict --pano assets/samples/" in out  # the README's example, found and parsed
    assert _digest(watched) == before


def test_the_tier_is_written_wherever_the_docs_name_it(refresh, tmp_path):
    for file in {file for file, _ in refresh.TIER_MENTIONS}:
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / file, tmp_path / file)
    refresh.name_tier("easy", root=tmp_path)
    assert "--seed 7 --tier easy" in (tmp_path / "assets" / "README.md").read_text()
    assert "bundled samples use the easy tier" in (tmp_path / "docs" / "synthetic-world.md").read_text()
    assert refresh.name_tier("easy", root=tmp_path) == []  # already says so
    assert set(refresh.name_tier("hard", root=tmp_path)) == {"assets/README.md", "README.md",
                                                              "docs/synthetic-world.md"}
    (tmp_path / "README.md").write_text("reworded\n")
    with pytest.raises(refresh.RefreshError, match="README.md: no text matches"):
        refresh.name_tier("medium", root=tmp_path)


def test_unknown_steps_are_refused(refresh, capsys):
    with pytest.raises(SystemExit) as exit_:
        refresh.main(["--only", "samples", "banners"])
    assert exit_.value.code == 2 and "unknown step banners" in capsys.readouterr().err


def test_results_older_than_their_checkpoint_are_stale(refresh, tmp_path):
    results, checkpoints = tmp_path / "results", tmp_path / "checkpoints"
    results.mkdir()
    (checkpoints / "gps_baseline").mkdir(parents=True)
    old, new = results / "gps_baseline_cross_fov360_aligned.json", results / "gps_baseline_same_fov90_45.json"
    for path in (old, new, results / "centre_cross.json"):
        path.write_text("{}")
    (checkpoints / "gps_baseline" / "weights.safetensors").write_bytes(b"w")
    for path, seconds in ((old, 1_000), (checkpoints / "gps_baseline" / "weights.safetensors", 2_000), (new, 3_000)):
        os.utime(path, (seconds, seconds))
    assert refresh.stale_results(results, checkpoints) == [old.name]


def test_teaser_panels(monkeypatch):
    teaser = _script("make_teaser")
    from geodistill.data.samples import load_sample

    sample = load_sample(teaser.DEFAULT_SAMPLE)  # the README example's sample exists
    side = int(sample["sat"].shape[-1])
    prob = np.zeros((side, side), dtype=np.float32)
    prob[100:110, 200:210] = 1.0
    prediction = SimpleNamespace(prob_on_tile=prob, uv=np.array([205.0, 105.0]), heading_deg=90.0, error_m=3.25)
    image = teaser.teaser(sample, prediction, np.zeros((teaser.SIDE, 2 * teaser.SIDE, 3), np.uint8), "a_student")
    assert image.shape == (teaser.CAPTION + teaser.SIDE, 4 * teaser.SIDE + 2 * teaser.GAP, 3)
    scale = teaser.SIDE / side
    left = teaser.SIDE + teaser.GAP  # the heatmap panel: the red prediction ring around (205, 105)
    ring = image[teaser.CAPTION + round(105 * scale) - 12: teaser.CAPTION + round(105 * scale) + 12,
                 left + round(205 * scale) - 12: left + round(205 * scale) + 12].reshape(-1, 3).astype(int)
    assert ((ring[:, 0] > 200) & (ring[:, 1] < 100)).any()
    assert (image[teaser.CAPTION:, -teaser.SIDE:] == 0).all()  # the panorama panel is the given panorama


def test_screenshot_arguments_and_environment_are_checked_before_the_app_starts(screenshots, tmp_path, capsys):
    assert screenshots.parse_args(["--only", "evaluate", "explore"]).only == ["explore", "evaluate"]
    with pytest.raises(SystemExit):
        screenshots.parse_args(["--only", "settings"])
    assert "unknown tab settings" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    chromium = tmp_path / "chromium"
    chromium.write_text("")
    for argv, message in ((["--chromium", str(tmp_path / "none")], "no Chromium there"),
                          (["--chromium", str(chromium), "--checkpoints", str(empty)], "no shipped checkpoint"),
                          (["--chromium", str(chromium), "--out", str(chromium)], "is a file, not a folder")):
        assert screenshots.main(argv) == 1
        assert message in capsys.readouterr().err

"""``check-data --visual``: the GT and BEV check PNGs of the first panoramas, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from geodistill import settings
from geodistill.cli import main
from geodistill.commands.check_data import sidecar_heading, visual_records


@pytest.fixture
def samples_root():
    return settings.assets_dir() / "samples"


def test_visual_check_writes_two_pngs_per_panorama(samples_root, tmp_path, capsys):
    out_dir = tmp_path / "visual" / "nested"
    status = main(["check-data", str(samples_root), "--images", "none", "--visual", str(out_dir), "--limit", "2"])
    assert status == 0
    first_two = [record.pano_name.split(",")[0] for record in visual_records(samples_root, 2)]
    assert len(first_two) == 2
    expected = sorted(f"{pano}_{kind}.png" for pano in first_two for kind in ("gt", "bev"))
    assert sorted(p.name for p in out_dir.iterdir()) == expected
    for name in expected:
        image = np.asarray(Image.open(out_dir / name))
        assert image.ndim == 3 and image.shape[1] > image.shape[0] and image.std() > 10
    assert "visual check: 2 panorama(s) drawn" in capsys.readouterr().out


def test_visual_check_of_one_city(samples_root, tmp_path):
    records = visual_records(samples_root, 3, city="Chicago")
    assert [r.city for r in records] == ["Chicago"] * 3
    assert len({r.pano_name for r in records}) == 3


@pytest.mark.parametrize("argv, message", [
    (["--city", "Atlantis"], "--city Atlantis: no such city"),
    (["--limit", "0"], "--limit must be at least 1"),
])
def test_bad_visual_options_are_one_line_errors(samples_root, tmp_path, capsys, argv, message):
    status = main(["check-data", str(samples_root), "--images", "none", "--visual", str(tmp_path / "v"), *argv])
    assert status == 2 and message in capsys.readouterr().err


def test_visual_dir_that_is_a_file_is_a_clear_error(samples_root, tmp_path, capsys):
    target = tmp_path / "a_file.png"
    target.write_bytes(b"not a folder")
    status = main(["check-data", str(samples_root), "--visual", str(target)])
    error = capsys.readouterr().err
    assert status == 2
    assert f"--visual {target}: is a file, not a folder" in error
    assert target.read_bytes() == b"not a folder"


def test_sidecar_heading_defaults_to_north():
    assert sidecar_heading({"heading_deg": 370.0}) == 10.0
    assert sidecar_heading(None) == 0.0
    assert sidecar_heading({"heading_deg": float("nan")}) == 0.0
    assert sidecar_heading({"heading_deg": "east"}) == 0.0


def test_root_without_sidecars_and_with_a_broken_panorama(samples_root, tmp_path, capsys):
    import shutil

    root = tmp_path / "vigor"
    shutil.copytree(samples_root, root, ignore=shutil.ignore_patterns("*.json", "Seattle", "SanFrancisco", "Chicago"))
    shutil.copy(samples_root / "NewYork" / "metadata.json", root / "NewYork" / "metadata.json")
    first, second = visual_records(root, 2)
    first.pano_path.unlink()
    out_dir = tmp_path / "visual"
    assert main(["check-data", str(root), "--images", "none", "--visual", str(out_dir), "--limit", "2"]) == 1
    output = capsys.readouterr().out
    assert f"visual check: skipping {first.pano_name}" in output and "1 panorama(s) drawn" in output
    stem = second.pano_name.split(",")[0]
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{stem}_bev.png", f"{stem}_gt.png"]

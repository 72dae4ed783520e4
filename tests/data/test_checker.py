"""The dataset checker and the check-data command: passes on a good root, explains broken ones."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from geodistill.cli import main
from geodistill.data.checker import check_vigor_root


def test_good_root_passes_with_counts(fake_vigor):
    report = check_vigor_root(fake_vigor.root, images="full")
    assert report.ok, report.summary()
    assert report.usable_areas == ["same", "cross"]
    assert report.cities["NewYork"].panoramas == 6 and report.cities["Chicago"].tiles == 9
    assert report.cities["Chicago"].records == {
        "pano_label_balanced": 6, "same_area_balanced_train": 4, "same_area_balanced_test": 2}
    summary = report.summary()
    assert "verdict: OK" in summary and "Chicago" in summary and "cities absent: Seattle, SanFrancisco" in summary


def test_missing_root_and_missing_split_folder(fake_vigor, tmp_path):
    report = check_vigor_root(tmp_path / "nowhere")
    assert not report.ok and "not found" in report.summary()
    shutil.rmtree(fake_vigor.root / "splits__corrected")
    report = check_vigor_root(fake_vigor.root)
    assert not report.ok
    assert "no split folder" in report.summary() and "fix: get the split files" in report.summary()


def test_unparseable_label_lines_are_listed_with_line_numbers(fake_vigor):
    path = fake_vigor.root / "splits__corrected" / "Chicago" / "same_area_balanced_test__corrected.txt"
    path.write_text(path.read_text() + "\nnot-a-label 1 2\n")
    report = check_vigor_root(fake_vigor.root, images="none")
    assert not report.ok and report.usable_areas == ["cross"]
    (problem,) = report.errors
    assert problem.where == str(path) and "line 3: " in problem.message and "13 tokens" in problem.fix
    summary = report.summary().splitlines()
    assert "usable areas: cross (counting only the cities without errors; fix the errors above first)" in summary
    assert summary[-1].startswith("verdict: NOT USABLE")


def test_missing_truncated_and_misshapen_images(fake_vigor):
    cameras = [c for c in fake_vigor.cameras.values() if c.city == "Chicago"]
    pano_dir = fake_vigor.root / "Chicago" / "panorama"
    (pano_dir / cameras[0].pano_name).unlink()
    data = (pano_dir / cameras[1].pano_name).read_bytes()
    (pano_dir / cameras[1].pano_name).write_bytes(data[: len(data) // 2])
    Image.new("RGB", (50, 40)).save(pano_dir / cameras[2].pano_name, format="JPEG")
    report = check_vigor_root(fake_vigor.root)
    assert not report.ok
    text = report.summary()
    assert "1 panorama file(s) named in the split files are missing" in text and cameras[0].pano_name in text
    assert f"{cameras[1].pano_name} (truncated" in text
    assert f"{cameras[2].pano_name} (50x40 is not a 2:1" in text
    assert "skip_bad_images" in text


def test_missing_split_file_and_folder(fake_vigor):
    (fake_vigor.root / "splits__corrected" / "NewYork" / "pano_label_balanced__corrected.txt").unlink()
    shutil.rmtree(fake_vigor.root / "Chicago" / "satellite")
    report = check_vigor_root(fake_vigor.root)
    text = report.summary()
    assert not report.ok and "missing pano_label_balanced__corrected.txt" in text
    assert "Chicago/satellite: folder missing" in text


@pytest.mark.parametrize("broken", [False, True])
def test_check_data_command(fake_vigor, capsys, broken):
    if broken:
        (fake_vigor.root / "splits__corrected" / "Chicago" / "pano_label_balanced__corrected.txt").write_text("x y z")
    status = main(["check-data", str(fake_vigor.root), "--images", "quick"])
    output = capsys.readouterr().out
    assert status == (1 if broken else 0)
    assert ("NOT USABLE" in output) == broken and "NewYork" in output


@pytest.mark.parametrize("name", ["nowhere", "a_file"])
def test_check_data_on_a_missing_root_is_a_one_line_error(tmp_path, capsys, name):
    (tmp_path / "a_file").write_text("x")
    assert main(["check-data", str(tmp_path / name)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert f"{tmp_path / name}: dataset root" in captured.err


def test_image_check_level_is_honoured(fake_vigor):
    camera = next(c for c in fake_vigor.cameras.values() if c.city == "Chicago")
    path = fake_vigor.root / "Chicago" / "panorama" / camera.pano_name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert check_vigor_root(fake_vigor.root, images="none").ok  # names only: the file exists
    quick = check_vigor_root(fake_vigor.root, images="quick").summary()
    assert f"{camera.pano_name} (truncated (the file ends early))" in quick
    full = check_vigor_root(fake_vigor.root, images="full").summary()  # decoded: the loader's own message
    assert f"{camera.pano_name} (file is truncated" in full and "the file ends early" not in full

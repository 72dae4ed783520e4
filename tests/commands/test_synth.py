"""``python -m geodistill synth``: arguments, output layout and resuming."""

from __future__ import annotations

import pytest

from geodistill import cli


def test_synth_writes_a_small_vigor_root_and_resumes(tmp_path, capsys):
    out = tmp_path / "set"
    argv = ["synth", "--out", str(out), "--panos", "1", "--pano-size", "64x32", "--tile-size", "64",
            "--cities", "Seattle", "--tier", "easy", "--no-progress"]
    assert cli.main(argv) == 0
    assert len(list((out / "Seattle" / "panorama").glob("*.jpg"))) == 1
    assert len(list((out / "Seattle" / "satellite").glob("*.png"))) == 4
    assert (out / "splits__corrected" / "Seattle" / "pano_label_balanced__corrected.txt").is_file()
    assert cli.main(argv) == 0
    assert "reused 1" in capsys.readouterr().out


@pytest.mark.parametrize("bad", [["--pano-size", "100x64"], ["--panos", "0"], ["--tier", "extreme"],
                                 ["--tile-size", "0"], ["--tile-size", "100"], ["--tile-size", "big"]])
def test_synth_rejects_bad_arguments(tmp_path, bad):
    with pytest.raises(SystemExit) as error:
        cli.main(["synth", "--out", str(tmp_path), *bad])
    assert error.value.code == 2


def test_synth_refuses_other_settings_in_an_existing_folder(tmp_path, capsys):
    out = str(tmp_path / "set")
    base = ["synth", "--out", out, "--panos", "1", "--pano-size", "64x32", "--tile-size", "64", "--cities", "Seattle",
            "--no-progress"]
    assert cli.main(base + ["--seed", "1"]) == 0
    assert cli.main(base + ["--seed", "2"]) == 2
    assert "other settings" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["a_file", "a_file/set"])
def test_synth_refuses_an_out_path_on_a_file(tmp_path, capsys, out):
    (tmp_path / "a_file").write_text("x")
    assert cli.main(["synth", "--out", str(tmp_path / out), "--panos", "1", "--pano-size", "64x32", "--no-progress"]) == 2
    assert f"{tmp_path / 'a_file'} is a file, not a folder" in capsys.readouterr().err

"""``python -m geodistill evaluate``: output paths that cannot be written are refused up front (exit 2); without
``--checkpoint`` the shipped default model is evaluated."""

from __future__ import annotations

import json

import pytest

from geodistill.cli import main
from geodistill.data.samples import samples_root
from geodistill.shipped import DEFAULT_LOCALIZER


@pytest.mark.parametrize("flag", ["--json", "--per-sample"])
def test_output_path_that_is_a_folder_is_refused_before_evaluating(tmp_path, capsys, flag):
    code = main(["evaluate", "--checkpoint", "none", "--data", str(samples_root()), "--limit", "1", "--no-progress",
                 flag, str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 2
    assert f"{flag} {tmp_path}: is a folder" in captured.err
    assert "evaluating" not in captured.out and "n " not in captured.out


def test_output_path_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    code = main(["evaluate", "--checkpoint", "none", "--data", str(samples_root()), "--limit", "1", "--no-progress",
                 "--json", str(tmp_path / "a_file" / "summary.json")])
    assert code == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_outputs_are_written_into_new_folders(tmp_path, capsys):
    summary, rows = tmp_path / "new" / "summary.json", tmp_path / "new" / "rows.csv"
    code = main(["evaluate", "--checkpoint", "none", "--data", str(samples_root()), "--area", "cross", "--limit", "2",
                 "--no-progress", "--json", str(summary), "--per-sample", str(rows)])
    assert code == 0, capsys.readouterr().err
    assert summary.is_file() and len(rows.read_text().splitlines()) == 3


def test_a_ccvpe_checkpoint_evaluates_unknown_headings_without_an_orientation_model(tmp_path, capsys, monkeypatch):
    import torch

    from geodistill.checkpoint import save_checkpoint
    from geodistill.config import config_from_dict
    from geodistill.models.ccvpe import CcvpeNet

    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(tmp_path / "no_shipped_models"))
    config = config_from_dict({
        "model": {"architecture": "ccvpe", "backbone": "tiny_cnn", "pretrained": False, "allow_random_init": True,
                  "ccvpe": {"azimuth_bins": 4, "match_strides": [16, 8], "descriptor_channels": [8, 8],
                            "output_stride": 4}},
        "data": {"pano_height": 32, "sat_size": 64}})
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ccvpe", config, {"model": CcvpeNet(config.model).state_dict()},
                    {"task": "supervised", "role": "supervised"})
    for orientation in ("unknown", "45"):
        code = main(["evaluate", "--checkpoint", str(tmp_path / "ccvpe"), "--data", str(samples_root()), "--area",
                     "cross", "--limit", "2", "--no-progress", "--orientation", orientation, "--fov", "180"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert f"orientation={orientation}" in captured.out and "heading error: mean" in captured.out


def test_without_checkpoint_the_shipped_default_is_evaluated(tmp_path, capsys, monkeypatch, tiny_checkpoint):
    shipped = tmp_path / "checkpoints"
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(shipped))
    argv = ["evaluate", "--data", str(samples_root()), "--area", "cross", "--limit", "2", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"no default model at {shipped / DEFAULT_LOCALIZER}" in err and "--checkpoint" in err
    tiny_checkpoint(shipped / DEFAULT_LOCALIZER)
    summary = tmp_path / "summary.json"
    assert main(argv + ["--json", str(summary)]) == 0, capsys.readouterr().err
    assert json.loads(summary.read_text())["setting"]["checkpoint"] == str(shipped / DEFAULT_LOCALIZER)


def test_help_names_the_default_checkpoint(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default: checkpoints/{DEFAULT_LOCALIZER}, the shipped default, as for predict)" in help_text

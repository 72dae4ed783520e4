"""``python -m geodistill evaluate``: output paths that cannot be written are refused up front (exit 2)."""

from __future__ import annotations

import pytest

from geodistill.cli import main
from geodistill.data.samples import samples_root


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

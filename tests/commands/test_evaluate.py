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

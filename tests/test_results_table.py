"""training/results_table.py: the full table of docs/results.md and the README's summary, from evaluate JSON files
(fabricated here), and the published tables are those of docs/results/*.json."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from geodistill.shipped import DEFAULT_LOCALIZER

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def results_table():
    spec = importlib.util.spec_from_file_location("results_table", ROOT / "training" / "results_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(folder: Path, name: str, mean: float, median: float = 1.0, recall_5m: float = 0.5,
            heading: tuple[float, float] | None = None, n: int = 4) -> None:
    summary = {"n": n, "mean_m": mean, "median_m": median, "recall_1m": 0.25, "recall_3m": 0.375,
               "recall_5m": recall_5m}
    if heading:
        summary.update(ori_mean_deg=heading[0], ori_median_deg=heading[1])
    (folder / f"{name}.json").write_text(json.dumps(summary))


def _checkpoint(checkpoints: Path, name: str, task: str, noisy_gps_weight: float = 0.0,
                architecture: str = "g2sweakly") -> None:
    (checkpoints / name).mkdir(parents=True)
    config = {"train": {"task": task, "noisy_gps_weight": noisy_gps_weight}, "model": {"architecture": architecture}}
    (checkpoints / name / "config.json").write_text(json.dumps({"task": task, "config": config}))


@pytest.fixture
def folders(tmp_path, monkeypatch, results_table):
    """Fabricated results and checkpoints; no model here is the default (whichever student that is)."""
    monkeypatch.setattr(results_table.shipped, "DEFAULT_LOCALIZER", "no_such_model")
    results, checkpoints = tmp_path / "results", tmp_path / "checkpoints"
    results.mkdir()
    _checkpoint(checkpoints, "gps_baseline", "weak", noisy_gps_weight=1.0)
    _checkpoint(checkpoints, "gps_geodistill_student", "distill")
    _checkpoint(checkpoints, "ccvpe_base", "supervised", architecture="ccvpe")
    _result(results, "centre_cross", 12.0, 12.5, 0.05)
    _result(results, "gps_baseline_cross_fov360_aligned", 5.0, 2.0, 0.8)
    _result(results, "gps_baseline_cross_fov180_aligned", 10.0)
    _result(results, "gps_baseline_cross_fov360_45", 6.0, heading=(4.25, 2.5))
    _result(results, "gps_geodistill_student_cross_fov360_aligned", 4.5, 1.5, 0.825)
    _result(results, "gps_geodistill_student_cross_fov180_aligned", 8.0)
    _result(results, "ccvpe_base_cross_fov360_unknown", 7.0, heading=(20.0, 3.0))
    _result(results, "weak_baseline_cross_fov360_aligned", 9.0)  # no checkpoint: listed, supervision n/a
    _result(results, "fp32_weak_cross_fov360_aligned", 1.0)      # not a model of the table
    return results, checkpoints


def _rows(text: str, start: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith(f"| {start}")]


def test_full_table_cells_supervision_roles_and_na(results_table, folders):
    results, checkpoints = folders
    text, missing = results_table.table(results, checkpoints)
    cross, same = text.split("**same-area test**")
    assert _rows(cross, "tile centre") == [["tile centre (no model)", "–", "–", "any", "any", "4", "12.00", "12.50",
                                            "25.0%", "37.5%", "5.0%", "–", "–"]]
    assert _rows(cross, "`gps_baseline` | noisy GPS | base | 360° | ±45°") == [
        ["`gps_baseline`", "noisy GPS", "base", "360°", "±45°", "4", "6.00", "1.00", "25.0%", "37.5%", "50.0%",
         "4.25", "2.50"]]
    aligned = _rows(cross, "`gps_geodistill_student` | noisy GPS | student | 360° | aligned")
    assert aligned[0][5:] == ["4", "4.50", "1.50", "25.0%", "37.5%", "82.5%", "–", "–"]
    assert _rows(cross, "`gps_geodistill_student` | noisy GPS | student | 90° | aligned")[0][5:] == ["n/a"] * 8
    assert _rows(cross, "`ccvpe_base` | supervised | base | 360° | unknown")[0][-2:] == ["20.00", "3.00"]
    assert _rows(cross, "`weak_baseline` | n/a | base | 360° | aligned")[0][6] == "9.00"
    assert not _rows(text, "`fp32") and not _rows(text, "`geodistill_student`")
    # every model at 3 FoVs x 3 headings, on both splits
    assert len(_rows(cross, "`")) == len(_rows(same, "`")) == 4 * 9
    assert _rows(same, "`gps_baseline` | noisy GPS | base | 360° | aligned")[0][5:] == ["n/a"] * 8
    # missing: what a model should have; "unknown" only for a model that estimates its own heading
    assert "centre_same.json" in missing and "gps_baseline_cross_fov90_aligned.json" in missing
    assert "ccvpe_base_cross_fov180_unknown.json" in missing and "gps_baseline_cross_fov360_unknown.json" not in missing


def test_relative_line_compares_each_student_with_its_own_base(results_table, folders):
    results, checkpoints = folders
    text, _ = results_table.table(results, checkpoints)
    cross, same = text.split("**same-area test**")
    assert ("Student vs its base at 180°/360° (mean, aligned): `gps_geodistill_student` vs `gps_baseline`: "
            "-20.0 % at 180°, -10.0 % at 360°.") in cross
    assert "`gps_geodistill_student` vs `gps_baseline`: n/a at 180°, n/a at 360°." in same


def test_summary_is_cross_area_aligned_360_and_180(results_table, folders):
    results, checkpoints = folders
    text = results_table.summary(results, checkpoints).split("\n\n")[0]
    assert text.splitlines()[0] == "| model | supervision | role | cross 360° aligned | cross 180° aligned |"
    assert _rows(text, "tile centre") == [["tile centre (no model)", "–", "–", "12.00 / 12.50 / 5.0%",
                                           "12.00 / 12.50 / 5.0%"]]
    assert _rows(text, "`gps_geodistill_student`") == [["`gps_geodistill_student`", "noisy GPS", "student",
                                                        "4.50 / 1.50 / 82.5%", "8.00 / 1.00 / 50.0%"]]
    assert _rows(text, "`ccvpe_base`")[0][3:] == ["n/a", "n/a"]


def test_summary_heading_table_is_cross_area_45_and_unknown_with_the_heading_median(results_table, folders):
    results, checkpoints = folders
    aligned, headings = results_table.summary(results, checkpoints).split("\n\n")[:2]
    assert headings.splitlines()[0] == ("| model | supervision | role | cross 360° ±45° | cross 360° unknown "
                                        "| cross 180° ±45° | cross 180° unknown |")
    assert _rows(headings, "`gps_baseline`") == [["`gps_baseline`", "noisy GPS", "base",
                                                  "6.00 / 1.00 / 50.0% / 2.5°", "n/a", "n/a", "n/a"]]
    assert _rows(headings, "`ccvpe_base`")[0][3:] == ["n/a", "7.00 / 1.00 / 50.0% / 3.0°", "n/a", "n/a"]
    assert not _rows(headings, "tile centre") and len(_rows(headings, "`")) == len(_rows(aligned, "`"))


def test_the_default_is_marked(results_table, tmp_path):
    _result(tmp_path, f"{DEFAULT_LOCALIZER}_cross_fov360_aligned", 3.0)
    assert f"| `{DEFAULT_LOCALIZER}` (default) |" in results_table.summary(tmp_path, tmp_path / "none")


def test_write_fills_the_marked_sections_and_refuses_a_page_without_markers(results_table, folders, tmp_path):
    results, checkpoints = folders
    (tmp_path / "docs").mkdir()
    full, summary = results_table.MARKERS["full"], results_table.MARKERS["summary"]
    (tmp_path / "docs" / "results.md").write_text(f"# R\n\n{full[0]}\nold\n{full[1]}\n\nafter\n")
    (tmp_path / "README.md").write_text(f"intro\n{summary[0]}\n{summary[1]}\n")
    missing = results_table.write(results, checkpoints, root=tmp_path)
    page = (tmp_path / "docs" / "results.md").read_text()
    text, expected_missing = results_table.table(results, checkpoints)
    assert page == f"# R\n\n{full[0]}\n{text}{full[1]}\n\nafter\n" and missing == expected_missing
    assert (results / "table.md").read_text() == text
    assert results_table.summary(results, checkpoints) in (tmp_path / "README.md").read_text()

    (tmp_path / "README.md").write_text("no markers\n")
    page_before = (tmp_path / "docs" / "results.md").read_text()
    with pytest.raises(ValueError, match="README.md: needs exactly one <!-- results-table:summary -->"):
        results_table.write(results, checkpoints, root=tmp_path)
    assert (tmp_path / "docs" / "results.md").read_text() == page_before  # nothing written


def test_command_line_modes(results_table, folders, capsys):
    results, checkpoints = folders
    assert results_table.main([str(results), "--checkpoints", str(checkpoints)]) == 0
    captured = capsys.readouterr()
    assert captured.out == results_table.table(results, checkpoints)[0] and "centre_same.json" in captured.err
    assert results_table.main([str(results), "--summary", "--checkpoints", str(checkpoints)]) == 0
    assert capsys.readouterr().out == results_table.summary(results, checkpoints)
    assert results_table.main([str(results / "missing")]) == 2
    assert "no such results folder" in capsys.readouterr().err


def test_published_tables_are_those_of_the_evaluate_files(results_table):
    """docs/results/table.md, docs/results.md and README.md hold what results_table.py makes of docs/results/."""
    folder, checkpoints = ROOT / "docs" / "results", ROOT / "checkpoints"
    text, _ = results_table.table(folder, checkpoints)
    assert (folder / "table.md").read_text() == text
    for kind, page in results_table.PAGES.items():
        content = text if kind == "full" else results_table.summary(folder, checkpoints)
        start, end = results_table.MARKERS[kind]
        assert f"{start}\n{content}{end}" in (ROOT / page).read_text(), \
            f"{page}: run python training/results_table.py docs/results --write"


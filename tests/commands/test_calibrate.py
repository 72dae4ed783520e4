"""``python -m geodistill calibrate`` on the bundled samples, and the confidence as ``predict`` shows it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from geodistill.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "assets" / "samples"
STUDENT = ROOT / "checkpoints" / "geodistill_student"
needs_student = pytest.mark.skipif(not (STUDENT / "config.json").is_file(), reason="no shipped student")


@pytest.fixture
def uncalibrated(tmp_path):
    folder = tmp_path / "student"
    shutil.copytree(STUDENT, folder)
    document = json.loads((folder / "config.json").read_text())
    document.pop("calibration", None)
    (folder / "config.json").write_text(json.dumps(document))
    return folder


def _calibrate(folder, *extra):
    return main(["calibrate", "--checkpoint", str(folder), "--data", str(SAMPLES), "--area", "cross", "--split", "all",
                 "--fov", "360", "90", "--windows", "1", "--batch-size", "24", "--no-progress", *extra])


@needs_student
def test_fit_stores_the_calibration_then_measure_reports_it(uncalibrated, tmp_path, capsys):
    weights = (uncalibrated / "weights.safetensors").read_bytes()
    assert _calibrate(uncalibrated, "--measure") == 2
    assert "holds no confidence calibration" in capsys.readouterr().err
    assert _calibrate(uncalibrated) == 0
    assert "written to" in capsys.readouterr().out
    stored = json.loads((uncalibrated / "config.json").read_text())["calibration"]["student"]
    assert stored["fitted_on"]["n"] == 48 and stored["fitted_on"]["fovs_deg"] == [360.0, 90.0]
    assert (uncalibrated / "weights.safetensors").read_bytes() == weights
    report = tmp_path / "report.json"
    code = _calibrate(uncalibrated, "--measure", "--report", str(report))
    measured = json.loads(report.read_text())
    assert code == (1 if measured["max_gap"] > 0.10 else 0)
    assert measured["n"] == 48 and sum(b["n"] for b in measured["bins"]) == 48
    assert set(measured["per_fov"]) == {"360", "90"} and len(measured["plot_bins"]) == 10
    assert measured["calibrator"] == stored
    assert "held-out queries" in capsys.readouterr().out


@needs_student
def test_a_damaged_calibration_is_named_and_fitting_replaces_it(uncalibrated, capsys):
    document = json.loads((uncalibrated / "config.json").read_text())
    document["calibration"] = {"student": {"kind": "logistic", "version": 1, "features": ["unknown"]}}
    (uncalibrated / "config.json").write_text(json.dumps(document))
    assert _calibrate(uncalibrated, "--measure") == 2
    assert "config.json (calibration of the student network): damaged confidence calibration" in capsys.readouterr().err
    assert _calibrate(uncalibrated) == 0
    assert _calibrate(uncalibrated, "--measure") in (0, 1)


@needs_student
def test_predict_states_the_confidence_in_words(capsys):
    pano = next((SAMPLES / "NewYork" / "panorama").glob("*.jpg"))
    sat = next((SAMPLES / "NewYork" / "satellite").glob("*.png"))
    argv = ["predict", "--checkpoint", str(STUDENT), "--pano", str(pano), "--sat", str(sat), "--mpp", "0.113248",
            "--no-orientation"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "% chance within 5 m" in text
    assert main([*argv, "--json"]) == 0
    prediction = json.loads(capsys.readouterr().out)["prediction"]
    assert 0.0 <= prediction["confidence"] <= 1.0 and prediction["peak_probability"] < 0.5
    assert prediction["confidence_meaning"].startswith(f"{100 * prediction['confidence']:.0f} % chance within 5 m")
    assert prediction["unreliable"] == ("unreliable" in prediction["confidence_meaning"])


@needs_student
def test_every_kth_query_fits_on_a_spread_subset(uncalibrated):
    assert _calibrate(uncalibrated, "--every", "2") == 0
    stored = json.loads((uncalibrated / "config.json").read_text())["calibration"]["student"]
    assert stored["fitted_on"]["n"] == 24          # 12 of the 24 samples, at FoV 360 and 90
    assert _calibrate(uncalibrated, "--every", "0") == 2

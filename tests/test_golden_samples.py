"""The golden check: the shipped default model still localizes the bundled samples as training/ship.sh recorded.

``training/golden_samples.json`` holds the mean and median error of the default model (``checkpoints/<default>``) on
``assets/samples`` (aligned protocol, CPU), written by ``training/golden_samples.py`` after the export. Any change
to inference, geometry, data loading or the checkpoint that moves either number by more than the file's
``tolerance_m`` (0.02 m) fails here.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from geodistill.data.samples import list_samples
from geodistill.shipped import DEFAULT_LOCALIZER

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "training" / "golden_samples.py"


def _golden_module():
    spec = importlib.util.spec_from_file_location("golden_samples", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def golden():
    return _golden_module()


@pytest.mark.skipif(not any((ROOT / "checkpoints").glob("*/config.json")),
                    reason="no shipped checkpoints in this checkout")
def test_the_shipped_default_localizes_the_samples_at_its_recorded_accuracy(golden):
    expected = json.loads(golden.GOLDEN_FILE.read_text())
    assert expected["tolerance_m"] == golden.TOLERANCE_M == 0.02
    assert expected["checkpoint"] == f"checkpoints/{DEFAULT_LOCALIZER}", "run training/golden_samples.py again"
    assert expected["n"] == len(list_samples())
    actual = golden.evaluate_samples()
    assert golden.differences(expected, actual) == [], actual
    assert actual["mean_m"] == pytest.approx(expected["mean_m"], abs=0.02)
    assert actual["median_m"] == pytest.approx(expected["median_m"], abs=0.02)


def test_the_comparison_flags_what_moved(golden):
    expected = {"checkpoint": "checkpoints/a_student", "n": 24, "mean_m": 5.5, "median_m": 1.1, "tolerance_m": 0.02}
    assert golden.differences(expected, {**expected, "mean_m": 5.515}) == []
    assert golden.differences(expected, {**expected, "mean_m": 5.53})[0].startswith("mean_m: 5.5000 -> 5.5300")
    assert golden.differences(expected, {**expected, "median_m": 1.0, "n": 23}) == [
        "n: 24 -> 23", "median_m: 1.1000 -> 1.0000 (tolerance 0.02 m)"]


def test_a_file_written_for_another_default_is_flagged(golden):
    expected = {"checkpoint": "checkpoints/geodistill_student", "n": 24, "mean_m": 5.5, "median_m": 1.1,
                "tolerance_m": 0.02}
    moved = golden.differences(expected, {**expected, "checkpoint": "checkpoints/gps_geodistill_student"})
    assert len(moved) == 1 and "the default model changed" in moved[0] and "golden_samples.py" in moved[0]

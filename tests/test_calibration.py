"""The calibrated confidence: features, the logistic fit, its statistical accuracy, storage and wording."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from geodistill.calibration import (
    FEATURES, UNRELIABLE_BELOW, Calibrator, confidence_sentence, fit_calibrator, heatmap_features, is_unreliable,
    reliability_bins,
)
from geodistill.checkpoint import load_checkpoint, save_checkpoint, update_checkpoint_meta
from geodistill.config import ExperimentConfig
from geodistill.errors import CheckpointError

TRUE_WEIGHTS = np.array([1.2, -2.0, 1.5, 0.8])  # a known P(hit | features) for the statistical tests
TRUE_BIAS = -0.3


def synthetic_queries(count: int, seed: int) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Feature rows, their true hit probabilities and drawn outcomes (hit ~ Bernoulli(true probability))."""
    rng = np.random.default_rng(seed)
    raw = np.column_stack([rng.normal(-1.0, 2.0, count), rng.uniform(0.2, 1.0, count),
                           rng.choice([0.25, 0.5, 1.0], count), rng.normal(0.5, 0.1, count)])
    standard = (raw - [-1.0, 0.6, 0.58, 0.5]) / [2.0, 0.23, 0.31, 0.1]
    truth = 1.0 / (1.0 + np.exp(-(standard @ TRUE_WEIGHTS + TRUE_BIAS)))
    rows = [dict(zip(FEATURES, map(float, values))) for values in raw]
    return rows, truth, rng.random(count) < truth


@pytest.fixture(scope="module")
def fitted():
    rows, _, hits = synthetic_queries(3000, seed=1)
    return fit_calibrator(rows, hits, fitted_on={"data": "synthetic"})


def test_confidence_matches_the_observed_rate_on_held_out_queries_in_every_bin(fitted):
    rows, truth, hits = synthetic_queries(600, seed=2)
    confidences = fitted.confidences(rows)
    bins = reliability_bins(confidences, hits)
    assert [b["n"] for b in bins] == [200, 200, 200]
    for b in bins:
        assert abs(b["predicted"] - b["observed"]) <= 0.10, bins
    assert bins[0]["observed"] < bins[1]["observed"] < bins[2]["observed"]
    assert np.abs(confidences - truth).mean() < 0.03  # it recovers the true probabilities, not only bin averages


def test_an_uninformative_score_is_caught_by_the_bins(fitted):
    rows, _, hits = synthetic_queries(600, seed=3)
    reversed_confidence = 1.0 - fitted.confidences(rows)
    gaps = [abs(b["predicted"] - b["observed"]) for b in reliability_bins(reversed_confidence, hits)]
    assert max(gaps) > 0.10


def test_calibrator_survives_json_and_refuses_damage(fitted):
    rows, _, _ = synthetic_queries(50, seed=4)
    restored = Calibrator.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert np.allclose(restored.confidences(rows), fitted.confidences(rows), rtol=0, atol=1e-12)
    assert restored.fitted_on["data"] == "synthetic" and restored.fitted_on["n"] == 3000
    damaged = fitted.to_dict()
    damaged["weights"] = damaged["weights"][:2]
    with pytest.raises(CheckpointError, match="model.json: damaged confidence calibration"):
        Calibrator.from_dict(damaged, "model.json")
    with pytest.raises(CheckpointError, match="damaged"):
        Calibrator.from_dict({**fitted.to_dict(), "kind": "isotonic"})


def test_fit_needs_both_outcomes_and_enough_queries():
    rows, _, _ = synthetic_queries(40, seed=5)
    with pytest.raises(ValueError, match="every calibration query was a hit"):
        fit_calibrator(rows, [True] * 40)
    with pytest.raises(ValueError, match="at least 20"):
        fit_calibrator(rows[:10], [True, False] * 5)


def test_heatmap_features_of_a_sharp_and_a_flat_map():
    sharp = np.zeros((21, 21))
    sharp[10, 10] = 1.0
    features = heatmap_features(sharp, sharp, cell_m=1.0, fov_fraction=0.5)
    assert features["peak_mass"] == pytest.approx(1 - 1e-4) and features["entropy_norm"] == pytest.approx(0.0)
    assert features["fov_fraction"] == 0.5 and features["peak_score"] == 1.0 and features["peak_probability"] == 1.0
    flat = np.full((21, 21), 1 / 441)
    features = heatmap_features(flat, np.zeros((21, 21)), cell_m=1.0, fov_fraction=1.0)
    assert features["entropy_norm"] == pytest.approx(1.0)
    cells_within_5 = sum(1 for r in range(-5, 6) for c in range(-5, 6) if r * r + c * c <= 25)  # argmax is (0, 0)
    corner = sum(1 for r in range(0, 6) for c in range(0, 6) if r * r + c * c <= 25)
    assert features["peak_mass"] == pytest.approx(corner / 441) and corner < cells_within_5
    assert features["logit_peak_mass"] == pytest.approx(math.log(corner / (441 - corner)))
    # larger cells: the 5 m disc covers fewer of them
    assert heatmap_features(flat, flat, cell_m=2.5, fov_fraction=1.0)["peak_mass"] == pytest.approx(6 / 441)


def test_wording_and_threshold():
    assert confidence_sentence(0.734) == "73 % chance within 5 m"
    assert confidence_sentence(0.2) == "20 % chance within 5 m; unreliable: low confidence"
    assert "unlike the training imagery" in confidence_sentence(0.9, unlike_training=True)
    assert "not calibrated" in confidence_sentence(None)
    assert is_unreliable(UNRELIABLE_BELOW - 0.01) and not is_unreliable(UNRELIABLE_BELOW)
    assert is_unreliable(0.99, unlike_training=True) and not is_unreliable(None)


def test_unlike_training_flags_matches_weaker_than_the_fitting_queries(fitted):
    row = dict(zip(FEATURES, (0.0, 0.5, 1.0, fitted.peak_score_floor - 0.01)))
    assert fitted.unlike_training(row)
    assert not fitted.unlike_training({**row, "peak_score": fitted.peak_score_floor + 0.01})


def test_calibration_is_stored_in_config_json_without_touching_the_weights(tmp_path, fitted):
    folder = save_checkpoint(tmp_path / "ckpt", ExperimentConfig(), {"model": {"w": torch.ones(3)}},
                             {"task": "weak", "role": "weak"})
    weights = (folder / "weights.safetensors").read_bytes()
    update_checkpoint_meta(folder, {"calibration": {"weak": fitted.to_dict()}})
    assert (folder / "weights.safetensors").read_bytes() == weights
    stored = load_checkpoint(folder).meta["calibration"]["weak"]
    assert Calibrator.from_dict(stored).weights == fitted.weights
    assert not list(folder.glob(".*tmp*"))
    with pytest.raises(ValueError, match="cannot be changed"):
        update_checkpoint_meta(folder, {"task": "distill"})

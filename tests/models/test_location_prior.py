"""A Gaussian position prior fused into the location probability: it moves a peak only as much as it should."""

from __future__ import annotations

import math

import pytest
import torch

from geodistill import keys
from geodistill.models.prediction import fuse_location_prior, gaussian_log_prior, predict_from_scores

SIZE, CELL_M, MPP, TILE = 9, 2.0, 0.5, 64


def two_peaks(strong=(2, 7), weak=(6, 2)):
    scores = torch.zeros(1, SIZE, SIZE)
    scores[0, strong[0], strong[1]] = 0.6
    scores[0, weak[0], weak[1]] = 0.5
    return predict_from_scores(scores, torch.tensor([CELL_M]), torch.tensor([MPP]), TILE, 0.06)


def fuse(outputs, prior_xy, sigma_m):
    return fuse_location_prior(outputs[keys.LOG_PROBS], torch.tensor([CELL_M]), torch.tensor([MPP]), TILE,
                               torch.tensor([prior_xy], dtype=torch.float64), torch.tensor([sigma_m]))


def test_log_prior_peaks_at_the_prior_cell():
    # cell (row 6, col 2) of a 9x9 map with 2 m cells: east (2-4)*2 = -4 m, north -(6-4)*2 = -4 m
    log_prior = gaussian_log_prior((SIZE, SIZE), torch.tensor([CELL_M]), torch.tensor([[-4.0, -4.0]]),
                                   torch.tensor([3.0]))
    assert divmod(int(log_prior[0].argmax()), SIZE) == (6, 2)
    assert float(log_prior[0, 6, 3]) == pytest.approx(-(2.0 ** 2) / (2 * 3.0 ** 2))


def test_infinite_sigma_changes_nothing():
    outputs = two_peaks()
    fused = fuse(outputs, (-4.0, -4.0), math.inf)
    for key in (keys.PROB, keys.XY_MAX, keys.UV_MAX, keys.CONFIDENCE):
        assert torch.allclose(fused[keys.PROB if key == keys.PROB else key], outputs[key], atol=1e-6), key
    assert keys.SCORES not in fused


def test_prior_near_the_second_peak_moves_the_prediction_there():
    outputs = two_peaks()
    assert torch.allclose(outputs[keys.XY_MAX][0].double(), torch.tensor([6.0, 4.0], dtype=torch.float64))
    fused = fuse(outputs, (-4.0, -4.0), 5.0)
    assert torch.allclose(fused[keys.XY_MAX][0].double(), torch.tensor([-4.0, -4.0], dtype=torch.float64))
    assert abs(float(fused[keys.PROB].sum()) - 1.0) < 1e-5


def test_prior_far_from_a_sharp_peak_keeps_it_when_wide_and_overrides_it_when_narrow():
    scores = torch.zeros(1, SIZE, SIZE)
    scores[0, 2, 7] = 1.0  # one sharp peak; the prior sits 4 cells west and 4 south of it
    outputs = predict_from_scores(scores, torch.tensor([CELL_M]), torch.tensor([MPP]), TILE, 0.06)
    wide = fuse(outputs, (-2.0, -4.0), 30.0)
    assert torch.allclose(wide[keys.XY_MAX], outputs[keys.XY_MAX])
    assert float(wide[keys.CONFIDENCE]) < float(outputs[keys.CONFIDENCE]) + 1e-6
    narrow = fuse(outputs, (-2.0, -4.0), 0.5)
    assert torch.allclose(narrow[keys.XY_MAX][0].double(), torch.tensor([-2.0, -4.0], dtype=torch.float64))

"""Localizer.predict_batch(location_prior=...): the fused heatmap gives the position and the confidence inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from geodistill import keys
from geodistill.config import config_from_dict
from geodistill.data.collate import assemble_sample
from geodistill.inference import Localizer
from geodistill.models.prediction import predict_from_scores

CONFIG = {"model": {"backbone": "tiny_cnn", "pretrained": False, "allow_random_init": True, "decoder_width": 16,
                    "level_channels": [16, 8, 4], "subcell_refine": False},
          "data": {"pano_height": 32, "sat_size": 64}}


class TwoPeakModel(nn.Module):
    """A strong peak at score cell (2, 7) and a weaker one at (6, 2) of a 9x9 map of 1.5 m cells."""

    def forward(self, batch, fov_mask=None):
        scores = torch.zeros(batch[keys.SAT].shape[0], 9, 9)
        scores[:, 2, 7], scores[:, 6, 2] = 0.6, 0.5
        cell = torch.full((scores.shape[0],), 1.5)
        out = predict_from_scores(scores, cell, batch[keys.METERS_PER_PIXEL], batch[keys.SAT].shape[-1], 0.06)
        out[keys.CELL_M] = cell
        return out


def sample(sat_size=128, mpp=0.5):
    pano = torch.rand(3, 40, 80, generator=torch.Generator().manual_seed(0))
    sat = torch.rand(3, sat_size, sat_size, generator=torch.Generator().manual_seed(1))
    return assemble_sample(pano, sat, mpp, None, None, (40.0, -73.0), None)


@pytest.fixture(scope="module")
def localizer():
    return Localizer(TwoPeakModel(), config_from_dict(CONFIG))


def test_prior_at_the_weaker_peak_moves_the_prediction_and_its_heatmap(localizer):
    plain, = localizer.predict_batch([sample()])
    # (2, 7): east (7-4)*1.5 = 4.5 m, north 3 m; (6, 2): east -3 m, north -3 m; tile 0.5 m/px, centre 64
    assert np.allclose(plain.xy_m, [4.5, 3.0])
    weak_uv = (64 - 3.0 / 0.5, 64 + 3.0 / 0.5)
    fused, untouched = localizer.predict_batch([sample(), sample()], location_prior=[(*weak_uv, 6.0), None])
    assert np.allclose(fused.xy_m, [-3.0, -3.0]) and np.allclose(fused.uv, weak_uv)
    row, col = np.unravel_index(fused.prob_on_tile.argmax(), fused.prob_on_tile.shape)
    assert abs(col + 0.5 - weak_uv[0]) <= 1.5 and abs(row + 0.5 - weak_uv[1]) <= 1.5
    assert fused.calibration_features != plain.calibration_features
    assert np.allclose(untouched.xy_m, plain.xy_m)
    assert untouched.calibration_features == pytest.approx(plain.calibration_features)


def test_very_wide_prior_changes_nothing(localizer):
    plain, = localizer.predict_batch([sample()])
    wide, = localizer.predict_batch([sample()], location_prior=[(10.0, 20.0, 1e9)])
    assert np.allclose(wide.uv, plain.uv)
    assert np.allclose(wide.prob_on_tile, plain.prob_on_tile, atol=1e-6)
    assert wide.calibration_features == pytest.approx(plain.calibration_features, rel=1e-5)


def test_bad_priors_are_refused(localizer):
    with pytest.raises(ValueError, match="sigma must be positive"):
        localizer.predict_batch([sample()], location_prior=[(64.0, 64.0, 0.0)])
    with pytest.raises(ValueError, match="expected 1 location priors"):
        localizer.predict_batch([sample()], location_prior=[None, None])

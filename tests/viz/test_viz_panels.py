from types import SimpleNamespace

import numpy as np
import torch

from geodistill.viz.panels import case_thumbnail, display_heading, explore_view, prediction_summary


def _prediction(u, v, error_m=1.5, heading_deg=None, visible=64):
    prob = np.zeros((64, 64), np.float32)
    prob[int(v), int(u)] = 1.0
    mask = np.zeros(64, bool)
    mask[:visible] = True
    return SimpleNamespace(uv=np.array([u, v]), latlon=np.array([40.1, -74.2]), heading_deg=heading_deg,
                           confidence=0.25, prob_on_tile=prob, fov_mask=mask, uv_gt=np.array([30.0, 30.0]),
                           error_m=error_m, heading_gt_deg=0.0, meters_per_pixel=0.5)


def test_explore_view_draws_every_panel():
    sample = {"pano": torch.rand(3, 32, 64), "sat": torch.rand(3, 64, 64), "meters_per_pixel": torch.tensor(0.5)}
    view = explore_view(sample, _prediction(20, 20, visible=32), _prediction(31, 31, 0.7), opacity=0.6)
    for image in (view.teacher, view.student, view.difference, view.bev):
        assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    assert view.panorama.shape == (32, 64, 3)
    assert not np.array_equal(view.teacher, view.student)
    assert view.summary.startswith("| | teacher | student |")


def test_summary_reports_error_heading_and_fov():
    text = prediction_summary(_prediction(10, 10, error_m=2.345, heading_deg=12.0, visible=32))
    assert "**2.35 m**" in text and "12.0°" in text and "180°" in text and "40.1000000, -74.2000000" in text


def test_heading_falls_back_to_the_known_one():
    assert display_heading(_prediction(1, 1, heading_deg=None)) == 0.0
    assert display_heading(_prediction(1, 1, heading_deg=33.0)) == 33.0
    assert "(known)" in prediction_summary(_prediction(1, 1))


def test_case_thumbnail():
    sample = {"sat": torch.rand(3, 64, 64)}
    assert case_thumbnail(sample, _prediction(10, 10), size=96).shape == (96, 96, 3)

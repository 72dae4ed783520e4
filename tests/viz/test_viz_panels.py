from types import SimpleNamespace

import numpy as np
import torch

from geodistill.viz.heatmap import GROUND_TRUTH_COLOUR, PREDICTION_COLOUR
from geodistill.viz.images import to_rgb_uint8
from geodistill.viz.panels import case_thumbnail, display_heading, explore_view, prediction_summary
from geodistill.viz.panorama import HIDDEN_DIM


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
    view = explore_view(sample, _prediction(50, 10, visible=32), _prediction(12, 45, 0.7), opacity=0.6)
    assert view.bev.shape == (512, 512, 3)
    for image in (view.teacher, view.student, view.difference):  # each with a colour bar to its right
        assert image.shape[0] == 512 and image.shape[1] > 512 and image.dtype == np.uint8
        assert (image[:, 512:] == 255).mean() > 0.5 and len(np.unique(image[:, 522], axis=0)) > 20  # a ramp
    scale = 512 / 64  # tile pixels to display pixels
    assert tuple(view.student[int(10 * scale), int(50 * scale)]) == PREDICTION_COLOUR  # each its own prediction
    assert tuple(view.teacher[int(45 * scale), int(12 * scale)]) == PREDICTION_COLOUR
    assert tuple(view.student[int(45 * scale), int(12 * scale)]) != PREDICTION_COLOUR
    for image in (view.student, view.teacher, view.difference):
        assert tuple(image[int(30 * scale), int(30 * scale)]) == GROUND_TRUTH_COLOUR  # the truth on every tile
    original = to_rgb_uint8(sample["pano"]).astype(int)  # student FoV: columns 0-31 visible, the rest dimmed
    assert np.array_equal(view.panorama[:12, 8].astype(int), original[:12, 8])  # (rows above the azimuth ticks)
    assert np.abs(view.panorama[:12, 40].astype(int) - np.round(original[:12, 40] * HIDDEN_DIM)).max() <= 1
    assert view.summary.startswith("| | teacher | student |")
    assert "**0.70 m** | **1.50 m**" in view.summary and "| 12.0, 45.0 | 50.0, 10.0 |" in view.summary
    assert "25 % chance within 5 m" in view.summary and "Confidence* is the calibrated chance" in view.summary


def test_pixels_are_those_of_the_tile_file():
    sample = {"pano": torch.rand(3, 32, 64), "sat": torch.rand(3, 64, 64), "meters_per_pixel": torch.tensor(0.5),
              "sat_file_side": 640}
    view = explore_view(sample, _prediction(50, 10), _prediction(12, 45, 0.7))
    assert "pixel (u, v) in the 640×640 tile file | 120.0, 450.0 | 500.0, 100.0 |" in view.summary
    assert "file pixel 300.0, 300.0" in view.summary


def test_summary_reports_error_heading_and_fov():
    text = prediction_summary(_prediction(10, 10, error_m=2.345, heading_deg=12.0, visible=32))
    assert "**2.35 m**" in text and "12.0°" in text and "180°" in text and "40.1000000, -74.2000000" in text


def test_heading_falls_back_to_the_known_one():
    assert display_heading(_prediction(1, 1, heading_deg=None)) == 0.0
    assert display_heading(_prediction(1, 1, heading_deg=33.0)) == 33.0
    assert "0.0° (given: north-aligned)" in prediction_summary(_prediction(1, 1), heading_mode="aligned")
    assert "33.0° (estimated)" in prediction_summary(_prediction(1, 1, heading_deg=33.0), heading_mode="45")


def test_a_heading_asked_for_but_not_estimated_is_not_shown_as_known():
    text = prediction_summary(_prediction(1, 1), heading_mode="45")
    assert "not estimated" in text and "0.0°" not in text


def test_case_thumbnail():
    sample = {"sat": torch.rand(3, 64, 64)}
    thumbnail = case_thumbnail(sample, _prediction(10, 50), size=96)
    assert thumbnail.shape == (96, 96, 3)
    assert tuple(thumbnail[75, 15]) == PREDICTION_COLOUR and tuple(thumbnail[45, 45]) == GROUND_TRUTH_COLOUR


def test_explore_view_draws_a_heading_field_when_asked():
    from geodistill.viz.heatmap import FIELD_COLOUR

    sample = {"pano": torch.rand(3, 32, 64), "sat": torch.zeros(3, 64, 64), "meters_per_pixel": torch.tensor(0.5)}
    centres = np.arange(4) * 16.0 + 8.0
    v, u = np.meshgrid(centres, centres, indexing="ij")
    field = np.stack([u, v, np.full_like(u, 90.0), np.ones_like(u)], axis=-1).astype(np.float32)
    with_field = SimpleNamespace(**vars(_prediction(60, 60)), orientation_field=field)
    shown = explore_view(sample, with_field, opacity=0.0, show_field=True).student
    hidden = explore_view(sample, with_field, opacity=0.0).student
    without = explore_view(sample, _prediction(60, 60), opacity=0.0, show_field=True).student  # G2SWeakly: none
    arrow = (shown == FIELD_COLOUR).all(axis=-1)
    assert arrow.sum() > 50 and not (hidden == FIELD_COLOUR).all(axis=-1).any()
    assert not (without == FIELD_COLOUR).all(axis=-1).any()

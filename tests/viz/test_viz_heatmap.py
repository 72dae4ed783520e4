import numpy as np
import pytest
import torch

from geodistill.viz.heatmap import (
    FIELD_COLOUR,
    GROUND_TRUTH_COLOUR,
    HEADING_COLOUR,
    PREDICTION_COLOUR,
    difference_overlay,
    draw_localization,
    draw_orientation_field,
    heatmap_overlay,
    probability_alpha,
)
from geodistill.viz.images import to_rgb_uint8


def test_probability_alpha_scales_with_probability():
    alpha = probability_alpha(np.array([[0.0, 0.25, 1.0]]), opacity=0.8)
    np.testing.assert_allclose(alpha, [[0.0, 0.4, 0.8]], atol=1e-6)  # 0.8 * sqrt(p / max)
    assert probability_alpha(np.zeros((2, 2)), 0.8).max() == 0


def test_heatmap_overlay_paints_only_where_probable():
    sat = np.full((32, 32, 3), 100, np.uint8)
    prob = np.zeros((16, 16), np.float32)
    prob[4, 12] = 1.0  # one cell: tile pixels around (u=25, v=9)
    image = heatmap_overlay(sat, prob, opacity=0.9)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert (image[30, 2] == 100).all()         # far from the peak: the tile itself
    assert np.abs(image[9, 25].astype(int) - 100).sum() > 30  # at the peak: coloured
    assert (heatmap_overlay(sat, prob, opacity=0.0) == sat).all()


def test_heatmap_overlay_accepts_chw_tensors_and_resizes():
    prob = np.zeros((5, 5), np.float32)
    prob[1, 3] = 1.0  # display pixels rows 12.8-25.6, columns 38.4-51.2 at 64 px
    image = heatmap_overlay(torch.full((3, 20, 20), 0.5), prob, opacity=0.9, size=64)
    assert image.shape == (64, 64, 3)
    assert np.abs(image[19, 45].astype(int) - 128).sum() > 30  # the peak is coloured where its cell lies
    assert np.abs(image[56, 8].astype(int) - 128).max() <= 1   # elsewhere the grey tile shows


def test_difference_is_red_where_the_student_is_more_confident():
    sat = np.full((20, 20, 3), 128, np.uint8)
    teacher = np.zeros((20, 20), np.float32)
    student = np.zeros((20, 20), np.float32)
    teacher[5, 5] = 1.0
    student[15, 15] = 1.0
    image = difference_overlay(sat, teacher, student, opacity=1.0).astype(int)
    assert image[15, 15, 0] > image[15, 15, 2] + 50   # student higher: red
    assert image[5, 5, 2] > image[5, 5, 0] + 50       # teacher higher: blue
    assert (difference_overlay(sat, teacher, teacher) == sat).all()


def test_markers_land_where_the_convention_says():
    canvas = np.zeros((200, 200, 3), np.uint8)
    image = draw_localization(canvas, uv_pred=(100.0, 100.0), uv_gt=(40.0, 160.0), heading_deg=90.0)
    assert tuple(image[160, 40]) == GROUND_TRUTH_COLOUR
    assert tuple(image[100, 100]) == PREDICTION_COLOUR
    # heading 90 (east) points to +u; nothing is drawn to the north
    assert tuple(image[100, 115]) == HEADING_COLOUR
    assert tuple(image[85, 100]) == (0, 0, 0)
    north = draw_localization(canvas, uv_pred=(100.0, 100.0), heading_deg=0.0)
    assert tuple(north[85, 100]) == HEADING_COLOUR  # north is a smaller v


def test_ground_truth_with_nan_is_not_drawn():
    canvas = np.zeros((50, 50, 3), np.uint8)
    assert (draw_localization(canvas, uv_gt=(np.nan, np.nan)) == 0).all()


@pytest.mark.parametrize("shape", [(3, 8, 10), (8, 10, 3), (8, 10)])
def test_to_rgb_uint8_layouts(shape):
    assert to_rgb_uint8(np.ones(shape, np.float32)).shape == (8, 10, 3)
    assert to_rgb_uint8(np.ones(shape, np.float32)).max() == 255


def test_to_rgb_uint8_rejects_other_shapes():
    with pytest.raises(ValueError, match="expected an image"):
        to_rgb_uint8(np.zeros((2, 3, 4, 5)))


def _field(heading_deg: float, length: float = 1.0) -> np.ndarray:
    """A 4x4 heading field over a 64-px tile: cell centres 8, 24, 40, 56 px, one heading everywhere."""
    centres = np.arange(4) * 16.0 + 8.0
    v, u = np.meshgrid(centres, centres, indexing="ij")
    return np.stack([u, v, np.full_like(u, heading_deg), np.full_like(u, length)], axis=-1).astype(np.float32)


@pytest.mark.parametrize("heading, ahead, behind", [(90.0, (0, 10), (0, -10)), (0.0, (-10, 0), (10, 0)),
                                                    (180.0, (10, 0), (-10, 0))])
def test_orientation_field_arrows_point_along_the_heading(heading, ahead, behind):
    image = np.zeros((128, 128, 3), np.uint8)
    drawn = draw_orientation_field(image, _field(heading), uv_scale=2.0, spacing_px=64.0)  # every 2nd cell
    row, col = 24 * 2, 24 * 2  # a drawn cell, (1, 1), at tile pixel (24, 24)
    assert tuple(drawn[row + ahead[0], col + ahead[1]]) == FIELD_COLOUR
    assert tuple(drawn[row + behind[0], col + behind[1]]) == (0, 0, 0)
    assert not image.any()  # the input is not modified


def test_orientation_field_spacing_and_concentration():
    image = np.zeros((128, 128, 3), np.uint8)
    dense = draw_orientation_field(image, _field(90.0), uv_scale=2.0, spacing_px=32.0)       # every cell
    sparse = draw_orientation_field(image, _field(90.0), uv_scale=2.0, spacing_px=64.0)      # every 2nd cell
    assert tuple(dense[16, 16 + 5]) == FIELD_COLOUR and tuple(sparse[16, 16 + 5]) == (0, 0, 0)  # cell (0, 0)
    assert tuple(sparse[48, 48 + 20]) == FIELD_COLOUR and tuple(dense[48, 48 + 20]) == (0, 0, 0)  # longer arrows
    assert not draw_orientation_field(image, _field(90.0, length=0.0), uv_scale=2.0).any()  # no heading, no arrow

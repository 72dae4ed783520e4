import numpy as np
import pytest

from geodistill.viz.panorama import HIDDEN_DIM, MASK_EDGE_COLOUR, draw_fov


def _pano(width=64, height=32, value=200):
    return np.full((height, width, 3), value, np.uint8)


def test_hidden_columns_are_dimmed_and_visible_ones_kept():
    mask = np.zeros(64, bool)
    mask[16:48] = True
    image = draw_fov(_pano(), mask)
    assert image.shape == (32, 64, 3)
    assert tuple(image[5, 30]) == (200, 200, 200)
    assert image[5, 4, 0] == round(200 * HIDDEN_DIM)
    assert tuple(image[5, 16]) == MASK_EDGE_COLOUR   # the window's edges are drawn


def test_window_across_the_seam():
    mask = np.zeros(64, bool)
    mask[:8] = True
    mask[56:] = True
    image = draw_fov(_pano(), mask)
    assert image[5, 2, 0] == 200 and image[5, 60, 0] == 200
    assert image[5, 30, 0] == round(200 * HIDDEN_DIM)


def test_toggle_off_and_full_view_leave_the_panorama_alone():
    mask = np.zeros(64, bool)
    mask[:10] = True
    assert draw_fov(_pano(), mask, show_mask=False)[5, 40, 0] == 200
    assert draw_fov(_pano(), np.ones(64, bool))[5, 40, 0] == 200


def test_output_width_and_bad_mask():
    assert draw_fov(_pano(), None, width=128).shape == (64, 128, 3)
    with pytest.raises(ValueError, match="expected \\(64,\\)"):
        draw_fov(_pano(), np.ones(10, bool))

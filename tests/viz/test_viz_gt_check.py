"""The visual GT check: the flat-world BEV matches the aerial at the label, headings and markers are drawn right."""

from __future__ import annotations

import numpy as np
import pytest

from geodistill.viz.gt_check import (
    CAPTION_HEIGHT,
    GAP,
    PANEL_SIDE,
    aerial_crop,
    bev_check_view,
    gt_tile_view,
    panorama_bev_grey,
)
from geodistill.viz.heatmap import HEADING_COLOUR

EXTENT_M = 16.0
CELLS = 64


def _ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    a, b = a[mask] - a[mask].mean(), b[mask] - b[mask].mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.fixture(scope="module")
def flat_pair():
    from geodistill.data.synthetic.scene import render_pair

    return render_pair(5, "midrise", "easy", (512, 256), 160, 0.25, flat=True, offset_px=(7.0, -5.0),
                       world_size_m=200.0)


def test_bev_matches_the_aerial_at_the_label_better_than_a_few_metres_away(flat_pair):
    u, v = flat_pair["camera_px"]
    mpp = flat_pair["tile_mpp"]
    bev, bev_valid = panorama_bev_grey(flat_pair["pano"].image, EXTENT_M, flat_pair["camera_height_m"], 0.0, CELLS)
    assert bev_valid.all()
    scores = {}
    for shift_m in [(0, 0), (3, 0), (-3, 0), (0, 3), (0, -3), (2, 2)]:
        crop, valid = aerial_crop(flat_pair["tile"], (u + shift_m[0] / mpp, v + shift_m[1] / mpp), mpp, EXTENT_M, CELLS)
        assert valid.all()
        scores[shift_m] = _ncc(crop, bev, valid & bev_valid)
    at_label = scores.pop((0, 0))
    assert at_label > 0.4, at_label
    assert at_label > max(scores.values()) + 0.2, (at_label, scores)


def test_rolled_panorama_with_its_heading_gives_the_same_bev(flat_pair):
    pano = flat_pair["pano"].image
    height_m = flat_pair["camera_height_m"]
    north, _ = panorama_bev_grey(pano, EXTENT_M, height_m, 0.0, CELLS)
    facing_east = np.roll(pano, -pano.shape[1] // 4, axis=1)  # centre column now looks east
    turned, _ = panorama_bev_grey(facing_east, EXTENT_M, height_m, 90.0, CELLS)
    wrong, _ = panorama_bev_grey(facing_east, EXTENT_M, height_m, 0.0, CELLS)
    mask = np.ones_like(north, dtype=bool)
    assert np.abs(turned - north).mean() < 0.01 and _ncc(turned, north, mask) > 0.95
    assert _ncc(wrong, north, mask) < 0.5


def test_aerial_crop_is_north_up_and_marks_cells_off_the_tile():
    tile = np.zeros((64, 64, 3), np.uint8)
    tile[:32] = 255  # northern half white
    grey, valid = aerial_crop(tile, (32.0, 32.0), 1.0, 16.0, cells=16)
    assert grey[:7].min() > 0.99 and grey[9:].max() < 0.01
    _, valid = aerial_crop(tile, (4.0, 32.0), 1.0, 16.0, cells=16)
    assert not valid[:, :4].any() and valid[:, 4:].all()


def test_gt_view_draws_the_heading_arrow_and_the_panorama_centre():
    side = 200
    tile = np.full((side, side, 3), 90, np.uint8)
    pano = np.full((64, 128, 3), 40, np.uint8)
    image = gt_tile_view(tile, pano, (100.0, 100.0), heading_deg=90.0, caption="x")
    assert image.shape == (side + CAPTION_HEIGHT, side + GAP + 2 * side, 3)
    yellow = np.all(image == np.array(HEADING_COLOUR, np.uint8), axis=-1)
    tile_part = yellow[CAPTION_HEIGHT:, :side]
    rows, cols = np.nonzero(tile_part)
    assert cols.min() > 100 and abs(rows.mean() - 100) < 3  # the arrow points east of the dot
    centre_column = side + GAP + side
    assert yellow[CAPTION_HEIGHT + side // 2, centre_column - 2: centre_column + 2].any()


def test_bev_check_view_has_three_panels(flat_pair):
    u, v = flat_pair["camera_px"]
    image = bev_check_view(flat_pair["tile"], flat_pair["pano"].image, (u, v), flat_pair["tile_mpp"],
                           flat_pair["camera_height_m"], 0.0, EXTENT_M, caption="flat", cells=CELLS)
    assert image.shape == (PANEL_SIDE + 2 * CAPTION_HEIGHT, 3 * PANEL_SIDE + 2 * GAP, 3)
    overlay = image[2 * CAPTION_HEIGHT:, 2 * (PANEL_SIDE + GAP):].astype(int)[40:150, 250:370]  # no markers
    assert np.array_equal(overlay[..., 0], overlay[..., 2])  # the aerial in red and blue, the BEV in green

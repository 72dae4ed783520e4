import numpy as np
import torch

from geodistill.viz.bev import bev_on_tile, project_panorama


def _pano_with_red_ground_at(u_from: int, u_to: int) -> torch.Tensor:
    pano = torch.zeros(3, 32, 64)
    pano[0, 16:, u_from:u_to] = 1.0  # ground (lower half) red in a band of azimuths
    return pano


def _red_share(bev: np.ndarray, rows: slice, cols: slice) -> float:
    return float((bev[rows, cols, 0] > 128).mean())


def test_centre_line_lands_north_and_turns_with_the_heading():
    pano = _pano_with_red_ground_at(26, 38)  # around u = W/2: the heading
    bev, alpha = project_panorama(pano, extent_m=20.0, camera_height_m=2.0, grid_size=32)
    assert bev.shape == (32, 32, 3) and alpha.shape == (32, 32)
    north, south = slice(0, 14), slice(18, 32)
    centre_cols = slice(13, 19)
    assert _red_share(bev, north, centre_cols) > 0.5
    assert _red_share(bev, south, centre_cols) == 0.0
    east_view, _ = project_panorama(pano, extent_m=20.0, camera_height_m=2.0, heading_deg=90.0, grid_size=32)
    assert _red_share(east_view, slice(13, 19), slice(18, 32)) > 0.5  # heading east: the band is east
    assert _red_share(east_view, north, centre_cols) == 0.0


def test_fov_mask_hides_the_ground_outside_the_window():
    pano = torch.rand(3, 32, 64)
    mask = np.zeros(64, bool)
    mask[24:40] = True  # 90 degrees around the heading
    _, alpha = project_panorama(pano, mask, extent_m=20.0, grid_size=32)
    assert alpha[2:10, 14:18].mean() > 0.9   # north: visible
    assert alpha[22:30, 14:18].max() == 0.0  # south: hidden
    _, full = project_panorama(pano, None, extent_m=20.0, grid_size=32)
    assert full[22:30, 14:18].mean() > 0.9


def test_bev_is_placed_at_the_prediction():
    sat = np.zeros((64, 64, 3), np.uint8)
    pano = torch.ones(3, 32, 64)
    pano[:, :16] = 0.0  # white ground, black sky
    image = bev_on_tile(sat, pano, uv_pred=(16.0, 48.0), meters_per_pixel=0.5, extent_m=10.0, size=64)
    assert image.shape == (64, 64, 3)
    bright = image.max(axis=-1) > 150
    rows, cols = np.nonzero(bright)
    assert abs(cols.mean() - 16) < 3 and abs(rows.mean() - 48) < 4   # around the prediction (drawn markers too)
    assert not bright[:20, 40:].any()                                 # far from it: the dark tile

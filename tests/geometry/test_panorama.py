"""Panorama columns, roll sign and FoV windows."""

from __future__ import annotations

import pytest
import torch

from geodistill.geometry.angles import angle_error_deg, wrap_deg, wrap_deg_signed
from geodistill.geometry.panorama import (
    azimuth_to_column,
    column_to_azimuth_deg,
    extract_fov_window,
    roll_panorama,
)


def marker_pano(width: int, columns: list[int], height: int = 4, batch: int = 1) -> torch.Tensor:
    pano = torch.zeros(batch, 3, height, width)
    pano[..., columns] = 1.0
    return pano


def marker_centre_column(pano: torch.Tensor) -> float:
    """Continuous column of a marker's centre of mass (no seam crossing)."""
    profile = pano[0, 0].sum(0)
    centres = torch.arange(pano.shape[-1], dtype=torch.float32) + 0.5
    return float((profile * centres).sum() / profile.sum())


def test_column_azimuth_landmarks():
    width = 1024
    assert column_to_azimuth_deg(width / 2, width) == 0.0  # heading (north for VIGOR)
    assert column_to_azimuth_deg(3 * width / 4, width) == 90.0  # east
    assert column_to_azimuth_deg(width / 4, width) == -90.0  # west
    assert column_to_azimuth_deg(0.0, width) == -180.0  # seam, south
    assert column_to_azimuth_deg(float(width), width) == -180.0
    for azimuth in (-180.0, -90.0, 0.0, 45.5, 179.0):
        assert column_to_azimuth_deg(azimuth_to_column(azimuth, width), width) == pytest.approx(azimuth)
    columns = torch.arange(width) + 0.5
    assert torch.allclose(azimuth_to_column(column_to_azimuth_deg(columns, width), width), columns)


def test_roll_plus_90_moves_centre_marker_to_quarter_width():
    width = 64
    pano = marker_pano(width, [width // 2 - 1, width // 2])  # marker centred on u = W/2
    assert marker_centre_column(pano) == pytest.approx(width / 2)
    rolled = roll_panorama(pano, 90.0)
    assert marker_centre_column(rolled) == pytest.approx(width / 4)  # azimuth -90
    assert column_to_azimuth_deg(marker_centre_column(rolled), width) == pytest.approx(-90.0)
    back = roll_panorama(rolled, -90.0)
    assert torch.equal(back, pano)


def test_roll_is_a_heading_change():
    """Turning clockwise by delta: what was at azimuth +delta is now straight ahead."""
    width = 72
    pano = marker_pano(width, [width * 3 // 4 - 1, width * 3 // 4])  # east
    rolled = roll_panorama(pano, 90.0)  # the camera now faces east
    assert marker_centre_column(rolled) == pytest.approx(width / 2)


def test_roll_fractional_and_per_sample():
    width = 36
    pano = torch.rand(3, 2, 5, width)
    delta = torch.tensor([10.0, 15.0, -400.0])  # 1, 1.5 and -40 columns
    rolled = roll_panorama(pano, delta)
    assert torch.allclose(rolled[0], torch.roll(pano[0], -1, dims=-1))
    expected = 0.5 * (torch.roll(pano[1], -1, dims=-1) + torch.roll(pano[1], -2, dims=-1))
    assert torch.allclose(rolled[1], expected)
    assert torch.allclose(rolled[2], torch.roll(pano[2], 40, dims=-1))
    assert torch.allclose(roll_panorama(pano, 360.0), pano)
    unbatched = roll_panorama(pano[0], 10.0)
    assert unbatched.shape == pano[0].shape and torch.allclose(unbatched, rolled[0])


def test_roll_rejects_wrong_number_of_angles():
    with pytest.raises(ValueError, match="delta_deg"):
        roll_panorama(torch.zeros(2, 3, 4, 8), torch.tensor([1.0, 2.0, 3.0]))


def test_fov_window_centre_and_width():
    width = 360
    pano = torch.arange(width, dtype=torch.float32).view(1, 1, width).expand(1, 2, width)  # value = column
    window = extract_fov_window(pano, 90.0, 0.0)
    assert window.shape == (1, 2, 90)
    assert window[0, 0, 0] == 135 and window[0, 0, -1] == 224  # azimuths [-45, 45)
    east = extract_fov_window(pano, 30.0, 90.0)
    assert east[0, 0].tolist() == list(range(255, 285))


def test_fov_window_wraps_across_the_seam():
    width = 360
    pano = torch.arange(width, dtype=torch.float32).view(1, 1, width)
    window = extract_fov_window(pano, 60.0, 180.0)  # centred on the seam (south)
    assert window[0, 0].tolist() == list(range(330, 360)) + list(range(0, 30))
    assert extract_fov_window(pano, 360.0, 0.0).shape[-1] == width


def test_angles():
    assert wrap_deg(-1e-12) < 360.0
    assert wrap_deg(torch.tensor([-90.0, 720.0, 359.5])).tolist() == [270.0, 0.0, 359.5]
    assert wrap_deg_signed(torch.tensor([180.0, -180.0, 190.0])).tolist() == [-180.0, -180.0, -170.0]
    assert angle_error_deg(10.0, 350.0) == pytest.approx(20.0)
    assert angle_error_deg(torch.tensor([0.0, 90.0]), torch.tensor([180.0, -90.0])).tolist() == [180.0, 180.0]

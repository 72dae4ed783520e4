"""Frame conversions: GPS <-> metres <-> tile pixels, Web-Mercator resolution, VIGOR labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodistill.geometry.frames import (
    VIGOR_METERS_PER_PIXEL,
    latlon_to_uv,
    latlon_to_xy,
    meters_per_pixel_at,
    resize_meters_per_pixel,
    resize_uv,
    uv_to_latlon,
    uv_to_vigor_delta,
    uv_to_xy,
    vigor_delta_to_uv,
    xy_to_latlon,
    xy_to_uv,
)

# City-centre latitudes (public knowledge); VIGOR's tiles lie within a few km of them.
CITY_LATITUDES = {"NewYork": 40.7128, "Seattle": 47.6062, "SanFrancisco": 37.7749, "Chicago": 41.8781}

# anchors.md §5 worked example (Chicago): panorama L-1poX8YZAmBZVLMqBu-4w and its positive tile.
CHICAGO_PANO_LATLON = np.array([41.877949, -87.689396])
CHICAGO_SAT_LATLON = np.array([41.877971796211014, -87.68943505304125])


@pytest.mark.parametrize("city", sorted(VIGOR_METERS_PER_PIXEL))
def test_zoom20_resolution_matches_vigor_table(city):
    computed = meters_per_pixel_at(CITY_LATITUDES[city], 20)
    assert abs(computed / VIGOR_METERS_PER_PIXEL[city] - 1.0) < 0.002


def test_latlon_xy_round_trip_within_a_millimetre():
    rng = np.random.default_rng(0)
    reference = np.array([[40.7128, -74.0060], [47.6062, -122.3321], [-33.86, 151.2], [64.1, -21.9]])
    for latlon_ref in reference:
        latlon = latlon_ref + rng.uniform(-0.002, 0.002, size=(100, 2))  # within ~200 m
        xy = latlon_to_xy(latlon, latlon_ref)
        back = xy_to_latlon(xy, latlon_ref)
        assert back.dtype == np.float64
        assert np.abs(latlon_to_xy(back, latlon_ref) - xy).max() < 1e-3
        assert np.abs(back - latlon).max() < 1e-8  # 1e-8 degrees is about 1 mm


def test_latlon_xy_round_trip_with_torch_float64():
    latlon_ref = torch.tensor([41.88, -87.69], dtype=torch.float64)
    xy = torch.tensor([[12.5, -30.25], [-70.0, 3.0]], dtype=torch.float64)
    back = latlon_to_xy(xy_to_latlon(xy, latlon_ref), latlon_ref)
    assert back.dtype == torch.float64
    assert torch.allclose(back, xy, atol=1e-3, rtol=0)


def test_north_and_east_directions():
    latlon_ref = np.array([41.88, -87.69])
    north_east = latlon_to_xy(latlon_ref + np.array([1e-4, 1e-4]), latlon_ref)
    assert north_east[0] > 0 and north_east[1] > 0
    assert north_east[1] == pytest.approx(11.13, abs=0.05)  # 1e-4 degrees of latitude ≈ 11.1 m
    u, v = xy_to_uv(np.array([0.0, 10.0]), 640, 0.1)
    assert (u, v) == (320.0, 220.0)  # 10 m north: smaller v
    u, v = xy_to_uv(np.array([10.0, 0.0]), 640, 0.1)
    assert (u, v) == (420.0, 320.0)  # 10 m east: larger u


def test_tile_centre_is_half_the_size():
    assert xy_to_uv(np.zeros(2), 640, 0.11).tolist() == [320.0, 320.0]
    assert xy_to_uv(np.zeros(2), 512, 0.14).tolist() == [256.0, 256.0]


def test_uv_xy_round_trip_with_per_sample_resolution():
    uv = torch.tensor([[10.0, 500.0], [256.0, 3.5]])
    mpp = torch.tensor([0.14, 0.126])
    xy = uv_to_xy(uv, 512, mpp)
    assert xy[1, 0] == pytest.approx(0.0)
    assert xy[1, 1] == pytest.approx((256 - 3.5) * 0.126)
    assert torch.allclose(xy_to_uv(xy, 512, mpp), uv, atol=1e-4)


def test_vigor_worked_example_chicago():
    mpp = VIGOR_METERS_PER_PIXEL["Chicago"]
    uv_640 = vigor_delta_to_uv(23.0, -29.0, 640)
    assert uv_640.tolist() == [349.0, 343.0]  # col 349, row 343
    east, north = uv_to_xy(uv_640, 640, mpp)
    assert east == pytest.approx(3.23, abs=0.005)
    assert north == pytest.approx(-2.56, abs=0.005)  # south
    uv_512 = vigor_delta_to_uv(23.0, -29.0, 512)
    assert np.allclose(uv_512, [256 + 0.8 * 29, 256 + 0.8 * 23])
    assert np.allclose(uv_to_xy(uv_512, 512, resize_meters_per_pixel(mpp, 640, 512)), [east, north])
    for size in (640, 512):
        delta_row, delta_col = uv_to_vigor_delta(vigor_delta_to_uv(23.0, -29.0, size), size)
        assert (delta_row, delta_col) == pytest.approx((23.0, -29.0))


def test_vigor_label_agrees_with_gps_in_the_file_names():
    """The label convention, checked against Web-Mercator from the GPS of the names (anchors.md §5)."""
    uv = latlon_to_uv(CHICAGO_PANO_LATLON, CHICAGO_SAT_LATLON, 640, VIGOR_METERS_PER_PIXEL["Chicago"])
    assert np.abs(uv - vigor_delta_to_uv(23.0, -29.0, 640)).max() < 0.5
    back = uv_to_latlon(uv, CHICAGO_SAT_LATLON, 640, VIGOR_METERS_PER_PIXEL["Chicago"])
    assert np.abs(back - CHICAGO_PANO_LATLON).max() < 1e-10


def test_vigor_deltas_batched_torch():
    delta_row = torch.tensor([23.0, -100.0, 0.0])
    delta_col = torch.tensor([-29.0, 50.0, 0.0])
    uv = vigor_delta_to_uv(delta_row, delta_col, 512)
    assert uv.shape == (3, 2)
    assert uv[2].tolist() == [256.0, 256.0]
    back_row, back_col = uv_to_vigor_delta(uv, 512)
    assert torch.allclose(back_row, delta_row) and torch.allclose(back_col, delta_col)


def test_resize_keeps_footprint_and_centre():
    assert resize_meters_per_pixel(0.113248, 640, 512) == pytest.approx(0.14156)
    assert resize_uv(np.array([320.0, 320.0]), 640, 512).tolist() == [256.0, 256.0]
    assert resize_uv(np.array([0.0, 640.0]), 640, 512).tolist() == [0.0, 512.0]
    # A point keeps its metric position through a resize.
    xy = uv_to_xy(np.array([349.0, 343.0]), 640, 0.111262)
    xy_resized = uv_to_xy(resize_uv(np.array([349.0, 343.0]), 640, 512), 512,
                          resize_meters_per_pixel(0.111262, 640, 512))
    assert np.allclose(xy, xy_resized)


def test_bad_coordinate_shape_is_rejected():
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        latlon_to_xy(np.zeros(3), np.zeros(2))

"""A tile's georeference from typed text, a GeoTIFF's tags and a world file."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from geodistill.data.georeference import (
    geotiff_georeference, parse_latlon, parse_number, world_file_georeference,
)
from geodistill.errors import DataError
from geodistill.geometry.frames import EARTH_RADIUS_M

LAT, LON, MPP, SIDE = 47.3769, 8.5417, 0.3, 64


def mercator(lat: float, lon: float) -> tuple[float, float]:
    return (math.radians(lon) * EARTH_RADIUS_M,
            math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * EARTH_RADIUS_M)


@pytest.mark.parametrize("text, expected", [("0,3", 0.3), ("0.3", 0.3), (" -33,86 ", -33.86), ("\u221212", -12.0),
                                            ("", None), (None, None), (2, 2.0)])
def test_numbers_take_a_decimal_comma(text, expected):
    assert parse_number(text, "m/px") == expected


@pytest.mark.parametrize("text", ["1.234,5", "1,234,5", "abc", "nan"])
def test_ambiguous_or_bad_numbers_are_refused_by_name(text):
    with pytest.raises(DataError, match="m/px"):
        parse_number(text, "m/px")


@pytest.mark.parametrize("text", ["47.5766, 8.5417", "47.5766,8.5417", "47,5766, 8,5417", "47,5766 8,5417",
                                  "47.5766;8.5417", "(47.5766, 8.5417)", "47.5766 8.5417"])
def test_latlon_pastes(text):
    assert parse_latlon(text) == pytest.approx((47.5766, 8.5417))


def test_a_decimal_comma_alone_never_becomes_a_big_number():
    with pytest.raises(DataError, match="one number with a decimal comma, or two numbers"):
        parse_latlon("47,5766", "Tile centre")


@pytest.mark.parametrize("text, message", [("8.5, 147.5, 3", "not two numbers"), ("95, 8", "latitude 95"),
                                           ("45, 200", "longitude 200")])
def test_bad_latlon_is_refused_with_the_reason(text, message):
    with pytest.raises(DataError, match=message):
        parse_latlon(text, "Tile centre")


def write_geotiff(path, scale, tiepoint, geokeys):
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[33550], info.tagtype[33550] = tuple(scale), 12
    info[33922], info.tagtype[33922] = tuple(tiepoint), 12
    info[34735], info.tagtype[34735] = tuple(geokeys), 3
    Image.fromarray(np.zeros((SIDE, SIDE, 3), np.uint8)).save(path, tiffinfo=info)
    return path


def test_a_web_mercator_geotiff_gives_the_tile_centre_and_ground_scale(tmp_path):
    step = MPP / math.cos(math.radians(LAT))
    x, y = mercator(LAT, LON)
    corner = (0, 0, 0, x - SIDE / 2 * step, y + SIDE / 2 * step, 0)
    path = write_geotiff(tmp_path / "tile.tif", (step, step, 0), corner, (1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, 3857))
    georef = geotiff_georeference(path)
    assert (georef.lat, georef.lon) == pytest.approx((LAT, LON), abs=1e-7)
    assert georef.meters_per_pixel == pytest.approx(MPP, rel=1e-4)


def test_a_wgs84_geotiff_with_square_ground_pixels(tmp_path):
    deg_y = MPP / (math.pi * EARTH_RADIUS_M / 180)
    deg_x = deg_y / math.cos(math.radians(LAT))
    corner = (0, 0, 0, LON - SIDE / 2 * deg_x, LAT + SIDE / 2 * deg_y, 0)
    path = write_geotiff(tmp_path / "tile.tif", (deg_x, deg_y, 0), corner, (1, 1, 0, 2, 1024, 0, 1, 2, 2048, 0, 1, 4326))
    georef = geotiff_georeference(path)
    assert (georef.lat, georef.lon) == pytest.approx((LAT, LON), abs=1e-6)
    assert georef.meters_per_pixel == pytest.approx(MPP, rel=1e-3)


def test_other_projections_are_named(tmp_path):
    path = write_geotiff(tmp_path / "utm.tif", (0.3, 0.3, 0), (0, 0, 0, 465000, 5246000, 0),
                         (1, 1, 0, 1, 3072, 0, 1, 32632))
    with pytest.raises(DataError, match="utm.tif.*EPSG:32632"):
        geotiff_georeference(path)


def test_a_plain_image_has_no_georeference(tmp_path):
    path = tmp_path / "plain.png"
    Image.fromarray(np.zeros((SIDE, SIDE, 3), np.uint8)).save(path)
    assert geotiff_georeference(path) is None
    (tmp_path / "text.tif").write_text("not an image")
    assert geotiff_georeference(tmp_path / "text.tif") is None


def test_a_world_file_in_web_mercator_metres(tmp_path):
    step = MPP / math.cos(math.radians(LAT))
    x, y = mercator(LAT, LON)
    world = tmp_path / "tile.pgw"
    world.write_text(f"{step}\n0\n0\n{-step}\n{x - (SIDE / 2 - 0.5) * step}\n{y + (SIDE / 2 - 0.5) * step}\n")
    georef = world_file_georeference(world, (SIDE, SIDE))
    assert (georef.lat, georef.lon) == pytest.approx((LAT, LON), abs=1e-7)
    assert georef.meters_per_pixel == pytest.approx(MPP, rel=1e-4)


def test_a_rotated_or_broken_world_file_is_refused(tmp_path):
    world = tmp_path / "tile.jgw"
    world.write_text("0.3\n0.1\n0\n-0.3\n1000\n2000\n")
    with pytest.raises(DataError, match="tile.jgw.*rotated"):
        world_file_georeference(world, (SIDE, SIDE))
    world.write_text("0.3\n0\n")
    with pytest.raises(DataError, match="tile.jgw.*six numbers"):
        world_file_georeference(world, (SIDE, SIDE))

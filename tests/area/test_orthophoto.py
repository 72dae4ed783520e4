"""Orthophotos: north-up tiles from GeoTIFFs in any CRS and from XYZ tiles, with the marker at the right pixel."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geodistill.area.local_frame import LocalFrame
from geodistill.area.orthophoto import OrthophotoError, open_orthophoto
from geodistill.errors import GeoDistillError

from .helpers import GREY, paint_marker, red_centroid, write_geotiff, write_xyz

# 2.5 degrees east of UTM zone 18's central meridian (75 W): grid north is turned by about 1.6 degrees there
CENTRE = (41.0, -72.5)
SIZE, MPP = 200, 0.2


def expected_uv(marker_latlon, centre=CENTRE, size=SIZE, mpp=MPP):
    east, north = LocalFrame(*centre).from_latlon(*marker_latlon)
    return size / 2 + float(east) / mpp, size / 2 - float(north) / mpp


@pytest.fixture
def utm_tif(tmp_path):
    return write_geotiff(tmp_path / "utm.tif", "EPSG:32618", CENTRE, 600, (0.25, 0.25))


@pytest.mark.parametrize(("east_m", "north_m"), [(0.0, 15.0), (12.0, -6.0), (-9.0, 0.0)])
def test_utm_tile_is_true_north_up_with_the_marker_at_its_pixel(utm_tif, east_m, north_m):
    marker = paint_marker(utm_tif, tuple(float(v) for v in LocalFrame(*CENTRE).to_latlon(east_m, north_m)))
    with open_orthophoto(utm_tif) as ortho:
        assert ortho.crs == "EPSG:32618"
        tile, valid = ortho.cut_tile(*CENTRE, SIZE, MPP, return_valid=True)
    assert tile.shape == (SIZE, SIZE, 3) and tile.dtype == np.uint8 and valid.all()
    u, v = red_centroid(tile)
    eu, ev = expected_uv(marker)
    # a marker 15 m north cut along UTM grid north would sit 15 m * tan(1.6 deg) = 2 px off the centre column
    assert abs(u - eu) < 0.5 and abs(v - ev) < 0.5, ((u, v), (eu, ev))


def test_geographic_geotiff(tmp_path):
    path = write_geotiff(tmp_path / "wgs84.tif", "EPSG:4326", (-33.87, 151.21), 500, (3.0e-6, 2.5e-6))
    marker = paint_marker(path, tuple(float(v) for v in LocalFrame(-33.87, 151.21).to_latlon(8.0, 10.0)))
    with open_orthophoto(path) as ortho:
        assert ortho.crs == "EPSG:4326"
        assert ortho.ground_mpp() == pytest.approx(np.sqrt(2.5e-6 * 111_000 * 3.0e-6 * 92_000), rel=0.02)
        tile = ortho.cut_tile(-33.87, 151.21, SIZE, MPP)
    u, v = red_centroid(tile)
    eu, ev = expected_uv(marker, centre=(-33.87, 151.21))
    assert abs(u - eu) < 0.5 and abs(v - ev) < 0.5, ((u, v), (eu, ev))


def test_xyz_folder_deepest_zoom(tmp_path):
    marker = tuple(float(v) for v in LocalFrame(*CENTRE).to_latlon(-7.0, 11.0))
    write_xyz(tmp_path / "tiles", CENTRE, 19, marker)
    write_xyz(tmp_path / "tiles", CENTRE, 17, CENTRE, radius_tiles=0)
    with open_orthophoto(tmp_path / "tiles") as ortho:
        assert ortho.crs == "EPSG:3857" and ortho.zoom == 19
        assert ortho.ground_mpp() == pytest.approx(156543.03392 * np.cos(np.radians(41.0)) / 2 ** 19, rel=0.01)
        tile = ortho.cut_tile(*CENTRE, SIZE, MPP)
    u, v = red_centroid(tile)
    eu, ev = expected_uv(marker)
    assert abs(u - eu) < 1.0 and abs(v - ev) < 1.0, ((u, v), (eu, ev))
    with open_orthophoto(tmp_path / "tiles", zoom=17) as coarse:
        assert coarse.zoom == 17


def test_outside_parts_are_black_and_reported(utm_tif):
    with open_orthophoto(utm_tif) as ortho:
        south, west, north, east = ortho.bounds_latlon()
        assert south < CENTRE[0] < north and west < CENTRE[1] < east
        assert ortho.contains(*CENTRE, margin_m=50.0)
        assert not ortho.contains(*CENTRE, margin_m=80.0)  # the image is 150 m wide
        edge = (CENTRE[0], east)
        assert not ortho.contains(*edge, margin_m=1.0)
        tile, valid = ortho.cut_tile(*edge, SIZE, MPP, return_valid=True)
        assert 0.4 < valid.mean() < 0.6
        assert (tile[~valid] == 0).all() and (tile[valid] == GREY).mean() > 0.95
        assert ortho.coverage(*edge, SIZE, MPP) == pytest.approx(valid.mean())
        assert ortho.coverage(CENTRE[0] + 1.0, CENTRE[1], SIZE, MPP) == 0.0


def test_to_native_round_trip(utm_tif):
    with open_orthophoto(utm_tif) as ortho:
        x, y = ortho.to_native(*CENTRE)
        with rasterio.open(utm_tif) as dataset:
            assert dataset.bounds.left < x < dataset.bounds.right
        assert ortho.native_to_latlon(x, y) == pytest.approx(CENTRE, abs=1e-9)


def test_geotiff_without_crs_is_refused(tmp_path):
    path = write_geotiff(tmp_path / "plain.tif", None, CENTRE, 64, (1.0, 1.0))
    with pytest.raises(OrthophotoError, match="plain.tif.*no coordinate reference system"):
        open_orthophoto(path)


def test_geotiff_without_georeference_is_refused(tmp_path):
    path = tmp_path / "nogeo.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8",
                       crs="EPSG:32618") as dataset:
        dataset.write(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(OrthophotoError, match="nogeo.tif.*no georeference"):
        open_orthophoto(path)


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "junk.tif").write_bytes(b"not a tiff")
    with pytest.raises(OrthophotoError, match="junk.tif.*not a readable GeoTIFF"):
        open_orthophoto(tmp_path / "junk.tif")
    with pytest.raises(GeoDistillError, match="absent.tif"):
        open_orthophoto(tmp_path / "absent.tif")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OrthophotoError, match="empty.*no XYZ tiles"):
        open_orthophoto(tmp_path / "empty")


def test_too_coarse_orthophoto_says_what_would_work(tmp_path):
    path = write_geotiff(tmp_path / "coarse.tif", "EPSG:32618", CENTRE, 64, (2.0, 2.0))
    with open_orthophoto(path) as ortho:
        ortho.check_resolution(1.5)
        with pytest.raises(OrthophotoError, match=r"coarse.tif.*2\.00 m/px.*at most 0\.30 m/px"):
            ortho.check_resolution(0.2)

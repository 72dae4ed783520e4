"""The synthetic test area: UTM georeference, GPS priors 5-15 m off, determinism and resume."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from geodistill.area.exif import read_gps
from geodistill.area.local_frame import LocalFrame
from geodistill.area.utm_orthophoto import ground_distance_m, render_side_m, write_utm_orthophoto
from geodistill.area.synthetic import ORTHOPHOTO_FILE, PANORAMA_DIR, TRUTH_FILE, generate_area, read_ground_truth

from tests.area.conftest import TINY_AREA


def test_markers_land_at_their_latlon_in_the_utm_geotiff(tmp_path):
    frame = LocalFrame(41.31, -72.60)
    mpp, extent = 0.5, 160.0
    side = 2 * math.ceil(render_side_m(extent, frame) / mpp / 2)
    image = np.zeros((side, side, 3), np.uint8)
    markers = [(60.0, 0.0), (-50.0, 40.0), (0.0, -70.0), (-70.0, -60.0)]
    for east, north in markers:  # a 2x2 block centred on the marker's continuous pixel
        col, row = int(side / 2 + east / mpp), int(side / 2 - north / mpp)
        image[row - 1:row + 1, col - 1:col + 1] = 255
    info = write_utm_orthophoto(tmp_path / "m.tif", image, frame, (0.0, 0.0), mpp, extent)
    assert info["crs"] == "EPSG:32618" and abs(info["convergence_deg"]) > 1.0  # the grid is turned, measurably
    with rasterio.open(tmp_path / "m.tif") as dataset:
        assert dataset.crs.is_projected and dataset.crs.to_epsg() == 32618
        band, transform, crs = dataset.read(1).astype(np.float64), dataset.transform, dataset.crs
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    for east, north in markers:
        lat, lon = (float(v) for v in frame.to_latlon(east, north))
        col, row = ~transform @ to_utm.transform(lon, lat)
        r0, c0 = int(row), int(col)
        window = band[r0 - 4:r0 + 5, c0 - 4:c0 + 5]
        rows, cols = np.mgrid[r0 - 4:r0 + 5, c0 - 4:c0 + 5] + 0.5
        found = ((window * cols).sum() / window.sum(), (window * rows).sum() / window.sum())
        assert math.hypot(found[0] - col, found[1] - row) < 0.15, (east, north, found, (col, row))
    # ignoring the CRS (reading grid north as true north) would misplace the far markers by more than a pixel
    assert abs(math.radians(info["convergence_deg"]) * 90.0) > 2 * mpp


def test_area_files_priors_and_georeference(tiny_area):
    root, summary = tiny_area
    truth = read_ground_truth(root / TRUTH_FILE)
    assert len(truth) == TINY_AREA["panos"] == summary["panoramas"]
    frame = LocalFrame(41.31, -72.60)
    with rasterio.open(root / ORTHOPHOTO_FILE) as dataset:
        assert dataset.crs.to_epsg() == 32618 and dataset.count == 3
        assert dataset.width == dataset.height == round(TINY_AREA["extent_m"] / TINY_AREA["meters_per_pixel"])
        bounds, crs = dataset.bounds, dataset.crs
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    for row in truth:
        prior = read_gps(root / PANORAMA_DIR / row["name"])
        assert prior is not None
        assert prior[0] == pytest.approx(row["prior_lat"], abs=2e-7) and prior[1] == pytest.approx(row["prior_lon"], abs=2e-7)
        error = ground_distance_m(row["true_lat"], row["true_lon"], prior[0], prior[1])
        assert 5.0 - 0.05 <= error <= 15.0 + 0.05
        assert error == pytest.approx(row["prior_error_m"], abs=0.05)
        x, y = to_utm.transform(row["prior_lon"], row["prior_lat"])  # the prior has room for a tile around it
        room = min(x - bounds.left, bounds.right - x, y - bounds.bottom, bounds.top - y)
        assert room >= TINY_AREA["camera_margin_m"] - 15.0 - 1.0
        east, north = (float(v) for v in frame.from_latlon(row["true_lat"], row["true_lon"]))
        assert max(abs(east), abs(north)) <= TINY_AREA["extent_m"] / 2 - TINY_AREA["camera_margin_m"] + 1e-6
        assert row["true_heading_deg"] == 0.0


def _digests(root):
    files = [root / TRUTH_FILE, *sorted((root / PANORAMA_DIR).glob("*.jpg"))]
    with rasterio.open(root / ORTHOPHOTO_FILE) as dataset:
        pixels = hashlib.sha256(dataset.read().tobytes()).hexdigest()
    return [pixels] + [hashlib.sha256(path.read_bytes()).hexdigest() for path in files]


def test_same_seed_same_files_other_seed_other_files_and_resume(tiny_area, tmp_path):
    root, _ = tiny_area
    again = generate_area(tmp_path / "again", **TINY_AREA)
    assert _digests(tmp_path / "again") == _digests(root)
    (tmp_path / "again" / PANORAMA_DIR / "pano_0002.jpg").unlink()
    resumed = generate_area(tmp_path / "again", **TINY_AREA)
    assert resumed["rendered"] == 1 and again["rendered"] == TINY_AREA["panos"]
    assert _digests(tmp_path / "again") == _digests(root)
    generate_area(tmp_path / "other", **{**TINY_AREA, "seed": 4})
    other = _digests(tmp_path / "other")
    assert other[0] != _digests(root)[0] and other[2] != _digests(root)[2]


def test_other_settings_in_the_same_folder_are_refused(tiny_area):
    root, _ = tiny_area
    with pytest.raises(Exception, match="other settings"):
        generate_area(root, **{**TINY_AREA, "panos": 4, "tier": "easy"})

"""Panorama priors from a CSV or EXIF, and every panorama that cannot be localized listed with its reason."""

from __future__ import annotations

import pytest
from PIL import Image

from geodistill.area.exif import save_jpeg_with_gps
from geodistill.area.priors import read_gps_csv, read_priors
from geodistill.errors import DataError


def pano(width=128, height=64):
    return Image.new("RGB", (width, height), (90, 120, 150))


@pytest.fixture
def folder(tmp_path):
    panos = tmp_path / "panos"
    save_jpeg_with_gps(pano(), panos / "a_exif.jpg", -33.5, -70.25, heading_deg=12.0)
    save_jpeg_with_gps(pano(), panos / "b_both.jpg", 10.0, 20.0)
    pano().save(panos / "c_nogps.jpg")
    pano(100, 64).save(panos / "d_square.jpg")
    (panos / "e_corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (panos / "notes.txt").write_text("ignored")
    return panos


def test_exif_priors_and_skipped_reasons(folder):
    priors, skipped = read_priors(folder)
    assert [p.name for p in priors] == ["a_exif.jpg", "b_both.jpg"]
    first = priors[0]
    assert (first.lat, first.lon) == pytest.approx((-33.5, -70.25)) and first.heading_deg == pytest.approx(12.0)
    assert first.position_source == "exif" and first.heading_source == "gpano/exif"
    assert priors[1].heading_deg is None
    reasons = {s.name: s.reason for s in skipped}
    assert set(reasons) == {"c_nogps.jpg", "d_square.jpg", "e_corrupt.jpg"}
    assert "c_nogps.jpg: no GPS position" in reasons["c_nogps.jpg"] and "--gps" in reasons["c_nogps.jpg"]
    assert "100x64" in reasons["d_square.jpg"] and "2:1" in reasons["d_square.jpg"]
    assert "e_corrupt.jpg: not a readable image" in reasons["e_corrupt.jpg"]


def test_csv_wins_over_exif_and_fills_missing_gps(folder, tmp_path):
    table = tmp_path / "gps.csv"
    table.write_text("b_both.jpg,11.5,21.5,270\nc_nogps,1.25,-2.5\nunknown.jpg,0,0\n")
    priors, skipped = read_priors(folder, table)
    by_name = {p.name: p for p in priors}
    assert (by_name["b_both.jpg"].lat, by_name["b_both.jpg"].lon) == (11.5, 21.5)
    assert by_name["b_both.jpg"].heading_deg == 270.0 and by_name["b_both.jpg"].heading_source == "csv"
    assert by_name["c_nogps.jpg"].position_source == "csv" and by_name["c_nogps.jpg"].heading_deg is None
    assert by_name["a_exif.jpg"].position_source == "exif"
    assert {s.name for s in skipped} == {"d_square.jpg", "e_corrupt.jpg"}


def test_csv_with_header_in_any_column_order(tmp_path):
    table = tmp_path / "gps.csv"
    table.write_text("lon,lat,name,heading\n-2.5,1.25,x.jpg,\n")
    assert read_gps_csv(table)["x.jpg"].lat == 1.25
    bad = tmp_path / "bad.csv"
    bad.write_text("file,latitude,longitude\nx.jpg,1,2\n")
    with pytest.raises(DataError, match="bad.csv.*missing name, lat, lon"):
        read_gps_csv(bad)


def test_bad_csv_row_skips_that_panorama_with_the_line(folder, tmp_path):
    table = tmp_path / "gps.csv"
    table.write_text("name,lat,lon\nc_nogps.jpg,north,2\n")
    _, skipped = read_priors(folder, table)
    reasons = {s.name: s.reason for s in skipped}
    assert "gps.csv line 2" in reasons["c_nogps.jpg"]


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(DataError, match="absent: no such panorama folder"):
        read_priors(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no panoramas found"):
        read_priors(tmp_path / "empty")

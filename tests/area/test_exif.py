"""EXIF GPS and GPano heading: written by save_jpeg_with_gps, read back by read_gps / read_heading."""

from __future__ import annotations

import pytest
from PIL import Image

from geodistill.area.exif import from_dms, read_gps, read_heading, save_jpeg_with_gps, to_dms
from geodistill.errors import DataError


def pano():
    return Image.new("RGB", (64, 32), (40, 90, 160))


@pytest.mark.parametrize(("lat", "lon"), [(40.7128301, -74.0060123), (-33.8688197, 151.2092955),
                                           (-22.9068467, -43.1728965), (51.5, 0.0000123)])
def test_gps_round_trip_in_every_hemisphere(tmp_path, lat, lon):
    path = save_jpeg_with_gps(pano(), tmp_path / "p.jpg", lat, lon)
    read = read_gps(path)
    assert read is not None
    assert read[0] == pytest.approx(lat, abs=1e-8) and read[1] == pytest.approx(lon, abs=1e-8)


def test_heading_from_gpano_and_exif(tmp_path):
    path = save_jpeg_with_gps(pano(), tmp_path / "p.jpg", 10.0, 20.0, heading_deg=-30.25)
    assert read_heading(path) == pytest.approx(329.75)
    assert b"GPano:PoseHeadingDegrees" in Image.open(path).info["xmp"]


def test_exif_direction_read_when_no_gpano(tmp_path):
    path = save_jpeg_with_gps(pano(), tmp_path / "p.jpg", 10.0, 20.0, heading_deg=123.5)
    with Image.open(path) as image:
        exif = image.getexif()
        image.convert("RGB").save(tmp_path / "exif_only.jpg", exif=exif)  # drops the XMP packet
    assert "xmp" not in Image.open(tmp_path / "exif_only.jpg").info
    assert read_heading(tmp_path / "exif_only.jpg") == pytest.approx(123.5)


def test_gpano_element_form_is_read(tmp_path):
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description>'
           b"<GPano:PoseHeadingDegrees>45.5</GPano:PoseHeadingDegrees></rdf:Description></rdf:RDF></x:xmpmeta>")
    pano().save(tmp_path / "p.jpg", xmp=xmp)
    assert read_heading(tmp_path / "p.jpg") == pytest.approx(45.5)


def test_missing_tags_give_none(tmp_path):
    pano().save(tmp_path / "plain.jpg")
    assert read_gps(tmp_path / "plain.jpg") is None
    assert read_heading(tmp_path / "plain.jpg") is None
    path = save_jpeg_with_gps(pano(), tmp_path / "no_heading.jpg", 1.0, 2.0)
    assert read_heading(path) is None


def test_unreadable_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        read_gps(bad)


def test_dms_conversion():
    dms = to_dms(12.5125)
    assert [float(x) for x in dms] == pytest.approx([12, 30, 45.0])
    assert from_dms(dms, "S") == pytest.approx(-12.5125)


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path):
    save_jpeg_with_gps(pano(), tmp_path / "p.jpg", 1.0, 2.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jpg"]
    with pytest.raises(ValueError):
        save_jpeg_with_gps(pano(), tmp_path / "q.jpg", 91.0, 2.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jpg"]

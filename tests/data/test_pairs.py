"""Users' own pairs: image formats, bad files, pinhole photos and georeferencing."""

from __future__ import annotations

import io
import math
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from geodistill import keys
from geodistill.data.pairs import GeoReference, load_panorama, load_satellite, make_sample
from geodistill.errors import DataError
from geodistill.geometry.frames import meters_per_pixel_at


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png_rgb16(path, pixels: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG, written by hand (PIL cannot write one)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].astype(">u2").tobytes() for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw))
                     + _png_chunk(b"IEND", b""))


def write_png_header_only(path, width: int, height: int) -> None:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IEND", b""))


def save(path, array: np.ndarray, **kwargs):
    Image.fromarray(array).save(path, **kwargs)
    return path


def test_panorama_and_tile_of_any_size(tmp_path):
    pano = load_panorama(save(tmp_path / "p.png", np.full((50, 100, 3), 200, np.uint8)))
    assert pano.image.shape == (3, 50, 100) and bool(pano.fov_mask.all()) and pano.name == "p.png"
    assert pano.image.max().item() == pytest.approx(200 / 255)
    assert load_satellite(save(tmp_path / "s.png", np.zeros((37, 37, 3), np.uint8))).image.shape == (3, 37, 37)


@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_a_big_panorama_is_decoded_at_a_reduced_size_still_tall_enough(tmp_path, suffix):
    rows = np.linspace(0, 255, 1200, dtype=np.uint8)[:, None, None]
    path = save(tmp_path / f"big.{suffix}", np.broadcast_to(rows, (1200, 2400, 3)).copy())
    full = load_panorama(path)
    reduced = load_panorama(path, decode_height=300)
    assert full.image.shape[-2:] == (1200, 2400)
    assert 300 <= reduced.image.shape[-2] <= 600 and reduced.image.shape[-1] == 2 * reduced.image.shape[-2]
    # the same picture: row means of the reduced decode follow the full one
    shrunk = torch.nn.functional.interpolate(full.image[None], size=reduced.image.shape[-2:], mode="area")[0]
    assert torch.allclose(shrunk.mean(dim=(0, 2)), reduced.image.mean(dim=(0, 2)), atol=0.03)


def test_non_2to1_panorama_is_refused_with_what_is_expected(tmp_path):
    with pytest.raises(DataError, match=r"100x80.*twice as wide.*field of view"):
        load_panorama(save(tmp_path / "p.png", np.zeros((80, 100, 3), np.uint8)))


def test_non_square_tile_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"64x48.*must be square"):
        load_satellite(save(tmp_path / "s.png", np.zeros((48, 64, 3), np.uint8)))
    with pytest.raises(DataError, match="at least"):
        load_satellite(np.zeros((8, 8, 3), np.uint8))


def test_grayscale_and_rgba_become_rgb(tmp_path):
    gray = load_satellite(save(tmp_path / "g.png", np.full((40, 40), 51, np.uint8))).image
    assert gray.shape == (3, 40, 40) and torch.allclose(gray, torch.full_like(gray, 0.2))
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 10
    image = load_satellite(save(tmp_path / "a.png", rgba)).image
    assert image.shape == (3, 40, 40) and image[0].min().item() == 1.0 and image[1:].max().item() == 0.0


def test_sixteen_bit_images_keep_their_range(tmp_path):
    gray = load_satellite(save(tmp_path / "g16.png", np.full((40, 40), 65535 // 4, np.uint16))).image
    assert gray.mean().item() == pytest.approx(0.25, abs=1e-3)
    pixels = np.zeros((40, 40, 3), np.uint16)
    pixels[..., 1] = 65535
    write_png_rgb16(tmp_path / "rgb16.png", pixels)
    image = load_satellite(tmp_path / "rgb16.png").image
    assert image[1].min().item() == 1.0 and image[0].max().item() == 0.0
    assert load_satellite(np.full((40, 40, 3), 32768, np.uint16)).image.mean().item() == pytest.approx(0.5, abs=1e-3)


def test_exif_rotation_is_applied(tmp_path):
    stored = np.zeros((64, 32, 3), np.uint8)  # stored portrait; orientation 6 shows it rotated to landscape
    stored[:4] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "r.jpg", exif=exif, quality=95)
    pano = load_panorama(tmp_path / "r.jpg")
    assert pano.image.shape == (3, 32, 64)
    assert pano.image[:, :, -4:].mean().item() > 0.9  # the bright top rows end up on the right


def test_huge_images_are_refused_before_decoding(tmp_path):
    path = save(tmp_path / "p.png", np.zeros((50, 100, 3), np.uint8))
    with pytest.raises(DataError, match="over the limit"):
        load_panorama(path, max_pixels=4000)
    write_png_header_only(tmp_path / "bomb.png", 40000, 20000)
    with pytest.raises(DataError, match="bomb.png.*(too large|over the limit)"):
        load_panorama(tmp_path / "bomb.png")


def test_corrupt_truncated_empty_and_missing_files(tmp_path):
    (tmp_path / "noise.jpg").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8)))
    with pytest.raises(DataError, match="noise.jpg.*not a readable image"):
        load_panorama(tmp_path / "noise.jpg")
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 128, 3), dtype=np.uint8)).save(buffer, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(DataError, match="cut.jpg.*truncated"):
        load_panorama(tmp_path / "cut.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        load_satellite(tmp_path / "empty.png")
    with pytest.raises(DataError, match="not found"):
        load_satellite(tmp_path / "absent.png")


def test_pinhole_photo_goes_into_an_equirectangular_canvas():
    photo = torch.zeros(3, 48, 64)
    photo[0] = 1.0
    pano = load_panorama(photo, hfov_deg=90.0)
    height, width = pano.image.shape[-2:]
    assert width == 2 * height and pano.hfov_deg == 90.0
    assert pano.fov_mask.float().mean().item() == pytest.approx(0.25, abs=2 / width)
    assert pano.image[0, height // 2, width // 2].item() == pytest.approx(1.0, abs=1e-4)  # photo centre on the centre line
    assert pano.image[:, :, ~pano.fov_mask].abs().max().item() == 0.0
    assert pano.image[0, 0, width // 2].item() == 0.0  # above the photo's vertical extent
    with pytest.raises(DataError, match="between 0 and 180"):
        load_panorama(photo, hfov_deg=200.0)


def test_zoom_and_meters_per_pixel_georeferences_agree():
    lat, lon = 41.8781, -87.6298
    by_zoom = GeoReference(lat, lon, zoom=20)
    assert by_zoom.tile_meters_per_pixel() == pytest.approx(156543.03392 * math.cos(math.radians(lat)) / 2**20, rel=1e-9)
    assert by_zoom.tile_meters_per_pixel() == pytest.approx(0.111262, rel=2e-3)  # VIGOR's Chicago value
    assert GeoReference(lat, lon, zoom=19, scale=2).tile_meters_per_pixel() == pytest.approx(by_zoom.tile_meters_per_pixel())
    by_mpp = GeoReference(lat, lon, meters_per_pixel=by_zoom.tile_meters_per_pixel())
    pano, tile = torch.rand(3, 32, 64), torch.rand(3, 100, 100)
    truth = (lat + 5e-5, lon - 4e-5)
    first = make_sample(pano, tile, by_zoom, pano_height=16, sat_size=50, gt_latlon=truth)
    second = make_sample(pano, tile, by_mpp, pano_height=16, sat_size=50, gt_latlon=truth)
    assert torch.allclose(first[keys.UV_GT], second[keys.UV_GT]) and bool(first[keys.HAS_GT])
    mpp_fed = by_zoom.tile_meters_per_pixel() * 100 / 50
    assert first[keys.METERS_PER_PIXEL].item() == pytest.approx(mpp_fed, rel=1e-6)
    north_m, east_m = 5e-5 * 111_320.0, -4e-5 * 111_320.0 * math.cos(math.radians(lat))
    assert first[keys.XY_GT].tolist() == pytest.approx([east_m, north_m], rel=5e-3)
    assert first[keys.UV_GT].tolist() == pytest.approx([25 + east_m / mpp_fed, 25 - north_m / mpp_fed], rel=5e-3)


def test_ground_truth_as_a_tile_pixel_gives_gps():
    georef = GeoReference(47.6, -122.3, meters_per_pixel=0.2)
    sample = make_sample(torch.rand(3, 32, 64), torch.rand(3, 200, 200), georef, 16, 100, gt_uv=(150.0, 100.0))
    assert sample[keys.UV_GT].tolist() == pytest.approx([75.0, 50.0])
    assert sample[keys.XY_GT].tolist() == pytest.approx([10.0, 0.0], abs=1e-5)
    assert sample[keys.LATLON_GT][0].item() == pytest.approx(47.6, abs=1e-9)
    assert sample[keys.LATLON_GT][1].item() > -122.3


def test_sample_without_ground_truth():
    sample = make_sample(torch.rand(3, 32, 64), torch.rand(3, 64, 64), GeoReference(meters_per_pixel=0.15), 16, 32)
    assert set(keys.SAMPLE_KEYS) <= set(sample) and not bool(sample[keys.HAS_GT])
    assert bool(torch.isnan(sample[keys.UV_GT]).all()) and bool(torch.isnan(sample[keys.XY_GT]).all())
    assert bool(torch.isnan(sample[keys.LATLON_SAT]).all()) and sample[keys.CITY] == "custom"
    assert sample[keys.METERS_PER_PIXEL].item() == pytest.approx(0.3)


def test_pinhole_sample_carries_its_mask():
    pano = load_panorama(torch.rand(3, 48, 64), hfov_deg=120.0)
    sample = make_sample(pano, torch.rand(3, 64, 64), GeoReference(meters_per_pixel=0.1), pano_height=20, sat_size=32)
    mask = sample[keys.FOV_MASK]
    assert mask.shape == (40,) and mask.float().mean().item() == pytest.approx(1 / 3, abs=0.05)
    assert sample[keys.PANO][..., ~mask].abs().max().item() == 0.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(lat=41.0, lon=-87.0), "scale is unknown"),
    (dict(lat=89.0, lon=0.0, zoom=20), "Web-Mercator"),
    (dict(lat=41.0, lon=200.0, meters_per_pixel=0.1), "longitude"),
    (dict(lat=41.0, lon=None, meters_per_pixel=0.1), "both latitude and longitude"),
    (dict(meters_per_pixel=-1.0), "plausible range"),
    (dict(meters_per_pixel=1e9), "1e\\+09 m/px is outside the plausible range 0.01-20"),
    (dict(meters_per_pixel=1e-9), "plausible range"),
    (dict(lat=41.0, lon=-87.0, zoom=5), "zoom 5 at latitude 41: .* outside the plausible range"),
    (dict(zoom=20), "needs the tile-centre latitude"),
    (dict(lat=41.0, lon=-87.0, zoom=20, meters_per_pixel=0.3), "disagrees"),
])
def test_bad_georeferences_are_refused(kwargs, match):
    with pytest.raises(DataError, match=match):
        GeoReference(**kwargs)


def test_gps_ground_truth_needs_a_georeferenced_tile():
    with pytest.raises(DataError, match="tile-centre lat/lon"):
        make_sample(torch.rand(3, 32, 64), torch.rand(3, 64, 64), GeoReference(meters_per_pixel=0.1), gt_latlon=(1.0, 2.0))
    assert float(meters_per_pixel_at(0.0, 20)) == pytest.approx(0.149291, rel=1e-5)

"""A north-up image rendered in a local frame, written as an orthophoto GeoTIFF in the UTM zone of the frame's centre.

The synthetic area (:mod:`geodistill.area.synthetic`) renders its world north-up in the local frame of its centre
(:class:`~geodistill.area.local_frame.LocalFrame`: azimuthal equidistant metres on WGS84, true north up) and
reprojects it here into UTM with rasterio, as a mapping agency's orthophoto would be delivered. UTM grid north
differs from true north by the grid convergence (about 1.6 degrees at 2.4 degrees of longitude from the zone's
central meridian, 41 degrees north), so a reader that ignored the CRS would misplace points by metres at the edges
of the area.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import rasterio
from pyproj import CRS, Geod, Transformer
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject

from geodistill.area.local_frame import LocalFrame
from geodistill.data.synthetic.writer import atomic_write_bytes

GEOD = Geod(ellps="WGS84")


def utm_crs(lat: float, lon: float) -> CRS:
    """The WGS84 UTM zone holding (lat, lon): EPSG 326zz north, 327zz south (no Norway/Svalbard exceptions)."""
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def local_to_utm(frame: LocalFrame, east, north):
    """UTM (easting, northing) of local metres east/north of the frame's centre."""
    return Transformer.from_crs(frame.crs, utm_crs(frame.lat, frame.lon), always_xy=True).transform(east, north)


def convergence_deg(frame: LocalFrame) -> float:
    """UTM grid convergence at the frame's centre: the bearing of true north on the UTM grid, degrees clockwise from
    grid north (negative east of the zone's central meridian in the northern hemisphere)."""
    x0, y0 = local_to_utm(frame, 0.0, 0.0)
    x1, y1 = local_to_utm(frame, 0.0, 100.0)
    return math.degrees(math.atan2(x1 - x0, y1 - y0))


def ground_distance_m(lat1, lon1, lat2, lon2):
    """Geodesic distance on WGS84, metres (arrays allowed)."""
    _, _, distance = GEOD.inv(lon1, lat1, lon2, lat2)
    return distance


def local_transform(center_en: tuple[float, float], size_px: int, meters_per_pixel: float) -> Affine:
    """Affine of a north-up ``size_px`` square image centred on local (east, north) at ``meters_per_pixel``
    (pixel i covers [i, i+1); the image centre S/2 is ``center_en``)."""
    half = size_px / 2 * meters_per_pixel
    return Affine(meters_per_pixel, 0.0, center_en[0] - half, 0.0, -meters_per_pixel, center_en[1] + half)


def render_side_m(extent_m: float, frame: LocalFrame, apron_m: float = 4.0) -> float:
    """Side of the local square to render so that a UTM square of side ``extent_m`` about the centre, turned
    by the grid convergence, lies inside it with ``apron_m`` to spare."""
    turn = math.radians(abs(convergence_deg(frame)))
    return extent_m * (math.cos(turn) + math.sin(turn)) * 1.001 + 2 * apron_m


def write_utm_orthophoto(path: Path, image: np.ndarray, frame: LocalFrame, center_en: tuple[float, float],
                         meters_per_pixel: float, extent_m: float) -> dict:
    """Reproject a north-up local-frame image into a UTM GeoTIFF of side ``extent_m`` about the frame's centre.

    Args:
        path: the GeoTIFF to write (atomically).
        image: (S, S, 3) uint8 RGB, north-up in the local frame, centred on ``center_en``.
        frame: the local frame.
        center_en: local (east, north) of the image centre, metres.
        meters_per_pixel: the image's resolution; the GeoTIFF gets the same pixel size in UTM metres.
        extent_m: side of the GeoTIFF's square, metres; it must lie inside the image (see :func:`render_side_m`).

    Returns:
        ``{"crs": "EPSG:326zz", "transform": [a, b, c, d, e, f], "size_px": N, "convergence_deg": ...}``.
    """
    size = int(round(extent_m / meters_per_pixel))
    crs = utm_crs(frame.lat, frame.lon)
    x0, y0 = local_to_utm(frame, 0.0, 0.0)
    left = math.floor(x0 / meters_per_pixel - size / 2) * meters_per_pixel  # snapped to the pixel grid
    top = math.ceil(y0 / meters_per_pixel + size / 2) * meters_per_pixel
    dst_transform = Affine(meters_per_pixel, 0.0, left, 0.0, -meters_per_pixel, top)
    source = np.ascontiguousarray(np.moveaxis(image, -1, 0))
    out = np.zeros((3, size, size), np.uint8)
    coverage = np.zeros((1, size, size), np.uint8)
    common = dict(src_transform=local_transform(center_en, image.shape[0], meters_per_pixel), src_crs=frame.crs,
                  dst_transform=dst_transform, dst_crs=crs)
    reproject(source, out, resampling=Resampling.bilinear, **common)
    reproject(np.ones((1, *image.shape[:2]), np.uint8), coverage, resampling=Resampling.nearest, **common)
    if not coverage.all():
        raise ValueError(f"the rendered image does not cover the {extent_m} m UTM square "
                         f"({int((coverage == 0).sum())} pixels missing); render a larger local image")
    profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs=crs,
                   transform=dst_transform, compress="deflate", tiled=True, blockxsize=256, blockysize=256,
                   photometric="RGB", interleave="pixel")
    with rasterio.MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            dataset.write(out)
        data = memory.read()
    atomic_write_bytes(Path(path), data)
    return {"crs": f"EPSG:{crs.to_epsg()}", "transform": list(dst_transform)[:6], "size_px": size,
            "convergence_deg": convergence_deg(frame)}

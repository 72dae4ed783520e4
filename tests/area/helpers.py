"""Small orthophotos with known markers, written by the tests themselves (GeoTIFF via rasterio, XYZ tiles)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from pyproj import Transformer
from rasterio.transform import from_origin

GREY = 60


def write_geotiff(path: Path, crs: str | None, centre_latlon: tuple[float, float], size_px: int,
                  pixel_size: tuple[float, float], pixels: np.ndarray | None = None) -> Path:
    """A 3-band uint8 GeoTIFF centred on ``centre_latlon`` with ``pixel_size`` (x, y) CRS units per pixel
    (``crs=None``: no CRS and no georeference at all)."""
    pixels = np.full((3, size_px, size_px), GREY, np.uint8) if pixels is None else pixels
    profile = dict(driver="GTiff", width=pixels.shape[2], height=pixels.shape[1], count=3, dtype="uint8")
    if crs is not None:
        x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(centre_latlon[1], centre_latlon[0])
        profile.update(crs=crs, transform=from_origin(x - pixels.shape[2] / 2 * pixel_size[0],
                                                       y + pixels.shape[1] / 2 * pixel_size[1], *pixel_size))
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(pixels)
    return path


def paint_marker(path: Path, latlon: tuple[float, float], half_px: int = 2) -> tuple[float, float]:
    """Paint a red square on a GeoTIFF around the pixel corner nearest ``latlon``; returns the square centre's exact
    (lat, lon)."""
    with rasterio.open(path, "r+") as dataset:
        to_native = Transformer.from_crs("EPSG:4326", dataset.crs, always_xy=True)
        col, row = ~dataset.transform @ to_native.transform(latlon[1], latlon[0])
        col, row = round(col), round(row)
        pixels = dataset.read()
        pixels[:, row - half_px: row + half_px, col - half_px: col + half_px] = np.array([255, 0, 0])[:, None, None]
        dataset.write(pixels)
        x, y = dataset.transform @ (col, row)
        lon, lat = Transformer.from_crs(dataset.crs, "EPSG:4326", always_xy=True).transform(x, y)
    return lat, lon


def red_centroid(tile: np.ndarray) -> tuple[float, float]:
    """Continuous (u, v) centre of the red pixels of an (S, S, 3) tile, weighted by redness."""
    redness = np.clip(tile[..., 0].astype(np.float64) - tile[..., 1], 0, None)
    redness[redness < 60] = 0
    rows, cols = np.nonzero(redness)
    weights = redness[rows, cols]
    return float((cols + 0.5) @ weights / weights.sum()), float((rows + 0.5) @ weights / weights.sum())


def mercator_pixel(lat: float, lon: float, zoom: int, tile_px: int = 256) -> tuple[float, float]:
    """Global continuous Web-Mercator pixel (x, y) of a point at ``zoom``."""
    scale = 2 ** zoom * tile_px
    x = (lon + 180.0) / 360.0 * scale
    y = (1.0 - math.log(math.tan(math.radians(lat)) + 1.0 / math.cos(math.radians(lat))) / math.pi) / 2.0 * scale
    return x, y


def write_xyz(folder: Path, centre_latlon: tuple[float, float], zoom: int, marker_latlon: tuple[float, float],
              radius_tiles: int = 1, tile_px: int = 256) -> Path:
    """XYZ tiles ``{z}/{x}/{y}.png`` around a point (grey) with a red 4x4 square centred on ``marker_latlon``."""
    cx, cy = (int(v // tile_px) for v in mercator_pixel(*centre_latlon, zoom, tile_px))
    mx, my = (round(v) for v in mercator_pixel(*marker_latlon, zoom, tile_px))
    for tx in range(cx - radius_tiles, cx + radius_tiles + 1):
        for ty in range(cy - radius_tiles, cy + radius_tiles + 1):
            pixels = np.full((tile_px, tile_px, 3), GREY, np.uint8)
            left, top = tx * tile_px, ty * tile_px
            rows = slice(max(my - 2 - top, 0), max(my + 2 - top, 0))
            cols = slice(max(mx - 2 - left, 0), max(mx + 2 - left, 0))
            pixels[rows, cols] = (255, 0, 0)
            (folder / str(zoom) / str(tx)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(folder / str(zoom) / str(tx) / f"{ty}.png")
    return folder

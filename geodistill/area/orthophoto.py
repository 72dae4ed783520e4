"""An orthophoto of the user's area: a GeoTIFF in any CRS, or a folder of XYZ (slippy-map) tiles.

``open_orthophoto(path)`` returns an :class:`Orthophoto`; ``cut_tile(lat, lon, size_px, meters_per_pixel)`` cuts a
true-north-up tile centred on a point, in the point's local azimuthal-equidistant frame
(:mod:`geodistill.area.local_frame`): the continuous pixel (S/2, S/2) is the point, +u east, +v south
(docs/conventions.md). Parts of the tile outside the orthophoto are black and reported as not valid.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image, UnidentifiedImageError
from pyproj import CRS, Geod, Transformer
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window

from geodistill.area.local_frame import WGS84, local_crs
from geodistill.errors import GeoDistillError

MERCATOR = "EPSG:3857"
MERCATOR_HALF_WORLD_M = 20037508.342789244
TILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
COARSE_TOLERANCE = 1.5  # an orthophoto coarser than this times the model's m/px is refused
SOURCE_MARGIN_PX = 3    # source pixels read around a tile's footprint (interpolation support)
FOOTPRINT_MARGIN = 1.1  # source read around a tile: its half side times this, north/south/east/west on the sphere
AVERAGE_ABOVE = 1.5     # downsampling factor from which the cut averages instead of interpolating
MAX_CACHED_TILES = 256
GEOD = Geod(ellps="WGS84")


class OrthophotoError(GeoDistillError):
    """An orthophoto that cannot be used (unreadable, not georeferenced, empty, too coarse)."""


class Orthophoto:
    """A georeferenced image of an area. Subclasses provide ``_read_region``, ``_native_shape`` and the transform.

    Attributes:
        path: the GeoTIFF file or the XYZ tile folder.
        crs: the native coordinate reference system, e.g. ``EPSG:32618`` (``EPSG:3857`` for XYZ tiles).
    """

    path: Path
    crs: str
    transform: Affine     # native pixel (col, row) -> native (x, y)
    width: int
    height: int

    def _init_frames(self) -> None:
        self._crs = CRS.from_user_input(self.crs)
        self._from_latlon = Transformer.from_crs(WGS84, self._crs, always_xy=True)
        self._to_latlon = Transformer.from_crs(self._crs, WGS84, always_xy=True)
        self._pixel_of = ~self.transform

    # ----- georeference -----
    def to_native(self, lat: float, lon: float) -> tuple[float, float]:
        """(x, y) of a point in the orthophoto's CRS."""
        x, y = self._from_latlon.transform(float(lon), float(lat))
        return float(x), float(y)

    def native_to_latlon(self, x: float, y: float) -> tuple[float, float]:
        """(lat, lon) of a point given in the orthophoto's CRS."""
        lon, lat = self._to_latlon.transform(float(x), float(y))
        return float(lat), float(lon)

    def pixel_of(self, lat: float, lon: float) -> tuple[float, float]:
        """Continuous native pixel (col, row) of a point."""
        col, row = self._pixel_of @ self.to_native(lat, lon)
        return float(col), float(row)

    def bounds_latlon(self) -> tuple[float, float, float, float]:
        """(south, west, north, east) in degrees of the orthophoto's extent."""
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        west, south, east, north = transform_bounds(self._crs, WGS84, min(left, right), min(top, bottom),
                                                    max(left, right), max(top, bottom), densify_pts=21)
        return south, west, north, east

    def ground_mpp(self) -> float:
        """Native ground resolution in true metres per pixel near the centre (geodesic lengths of one pixel step)."""
        col, row = self.width / 2.0, self.height / 2.0
        points = [self.transform @ (col + dc, row + dr) for dc, dr in ((0, 0), (1, 0), (0, 1))]
        lons, lats = self._to_latlon.transform([p[0] for p in points], [p[1] for p in points])
        _, _, step_x = GEOD.inv(lons[0], lats[0], lons[1], lats[1])
        _, _, step_y = GEOD.inv(lons[0], lats[0], lons[2], lats[2])
        return float(math.sqrt(step_x * step_y))

    def contains(self, lat: float, lon: float, margin_m: float = 0.0) -> bool:
        """Whether the point, and everything within ``margin_m`` metres east/west/north/south of it, lies inside
        the orthophoto's extent."""
        dlat = margin_m / 111_320.0
        dlon = margin_m / max(111_320.0 * math.cos(math.radians(lat)), 1e-6)
        probes = [(lat, lon), (lat + dlat, lon), (lat - dlat, lon), (lat, lon + dlon), (lat, lon - dlon)]
        for plat, plon in probes:
            col, row = self.pixel_of(plat, plon)
            if not (0.0 <= col <= self.width and 0.0 <= row <= self.height):
                return False
        return True

    def check_resolution(self, model_mpp: float, tolerance: float = COARSE_TOLERANCE) -> None:
        """Raise :class:`OrthophotoError` when the orthophoto is too coarse for a model localizing at
        ``model_mpp`` metres per pixel (coarser than ``tolerance`` times it)."""
        native = self.ground_mpp()
        if native > tolerance * model_mpp:
            raise OrthophotoError(
                f"{self.path}: the orthophoto has {native:.2f} m/px, too coarse for the model, which localizes at "
                f"{model_mpp:.3f} m/px and needs an orthophoto of at most {tolerance * model_mpp:.2f} m/px")

    # ----- tiles -----
    def cut_tile(self, lat: float, lon: float, size_px: int, meters_per_pixel: float, return_valid: bool = False):
        """A true-north-up RGB tile (size_px, size_px, 3) uint8 whose continuous pixel (S/2, S/2) is (lat, lon),
        at ``meters_per_pixel`` ground metres per pixel; with ``return_valid`` also a (S, S) bool mask of the pixels
        the orthophoto covers (the others are black)."""
        size = int(size_px)
        half = size / 2.0 * meters_per_pixel
        dst_crs = local_crs(lat, lon)
        dst_transform = Affine(meters_per_pixel, 0.0, -half, 0.0, -meters_per_pixel, half)
        warped = np.zeros((4, size, size), np.uint8)
        region = self._source_region(lat, lon, half, meters_per_pixel)
        if region is not None:
            rgb, mask, src_transform = region
            source_mpp = abs(src_transform.a) * self.ground_mpp() / abs(self.transform.a)
            resampling = Resampling.average if meters_per_pixel > AVERAGE_ABOVE * source_mpp else Resampling.bilinear
            reproject(np.concatenate([rgb, mask * 255]), warped, src_transform=src_transform, src_crs=self._crs,
                      dst_transform=dst_transform, dst_crs=dst_crs, resampling=resampling, src_nodata=None,
                      dst_nodata=0)
        valid = warped[3] >= 128
        tile = np.ascontiguousarray((warped[:3] * valid).transpose(1, 2, 0))
        return (tile, valid) if return_valid else tile

    def coverage(self, lat: float, lon: float, size_px: int, meters_per_pixel: float) -> float:
        """Fraction of the tile around (lat, lon) that the orthophoto covers."""
        _, valid = self.cut_tile(lat, lon, size_px, meters_per_pixel, return_valid=True)
        return float(valid.mean())

    def _source_region(self, lat: float, lon: float, half_m: float, mpp: float):
        """The native pixels under a tile's footprint: (rgb (3,h,w) uint8, valid (1,h,w) uint8, their transform),
        or None when the footprint misses the orthophoto. The footprint is bounded on the sphere with a margin
        (cheaper than a transformer per tile, and generous enough for any conformal or equal-area CRS)."""
        reach = half_m * FOOTPRINT_MARGIN
        dlat = reach / 111_000.0
        dlon = reach / max(111_000.0 * math.cos(math.radians(lat)), 1e-6)
        edge = np.linspace(-1.0, 1.0, 9)
        lats = lat + dlat * np.concatenate([edge, edge, -np.ones(9), np.ones(9)])
        lons = lon + dlon * np.concatenate([-np.ones(9), np.ones(9), edge, edge])
        nx, ny = self._from_latlon.transform(lons, lats)
        cols, rows = self._pixel_of @ (np.asarray(nx), np.asarray(ny))
        col0 = int(math.floor(np.min(cols))) - SOURCE_MARGIN_PX
        row0 = int(math.floor(np.min(rows))) - SOURCE_MARGIN_PX
        col1 = int(math.ceil(np.max(cols))) + SOURCE_MARGIN_PX
        row1 = int(math.ceil(np.max(rows))) + SOURCE_MARGIN_PX
        col0, row0, col1, row1 = max(col0, 0), max(row0, 0), min(col1, self.width), min(row1, self.height)
        if col1 <= col0 or row1 <= row0:
            return None
        step = max(1, int(mpp / self.ground_mpp() / 2.0))  # read decimated when the tile is much coarser
        return self._read_region(col0, row0, col1 - col0, row1 - row0, step)

    def _read_region(self, col0: int, row0: int, width: int, height: int, step: int):
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handles."""

    def __enter__(self) -> "Orthophoto":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _as_uint8(pixels: np.ndarray) -> np.ndarray:
    """(C,h,w) of any dtype -> (3,h,w) uint8 (grey replicated, extra bands dropped, 16-bit and 0-1 floats scaled)."""
    if pixels.shape[0] < 3:
        pixels = np.repeat(pixels[:1], 3, axis=0)
    pixels = pixels[:3]
    if pixels.dtype == np.uint8:
        return pixels
    values = pixels.astype(np.float32)
    if np.issubdtype(pixels.dtype, np.floating) and values.size and np.nanmax(values) <= 1.0:
        values = values * 255.0
    elif pixels.dtype == np.uint16 and values.size and values.max() > 255:
        values = values / 257.0
    return np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8)


class GeoTiffOrthophoto(Orthophoto):
    """A GeoTIFF (or any raster GDAL reads) with a CRS and an affine georeference."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            with warnings.catch_warnings():  # a file without georeference is refused below, with its name
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._dataset = rasterio.open(self.path)
        except (RasterioIOError, RasterioError) as error:
            raise OrthophotoError(f"{self.path}: not a readable GeoTIFF ({error})") from error
        dataset = self._dataset
        if dataset.crs is None:
            self.close()
            raise OrthophotoError(f"{self.path}: the GeoTIFF has no coordinate reference system (CRS); "
                                  "assign one (e.g. gdal_edit.py -a_srs EPSG:32618) and try again")
        if dataset.transform == Affine.identity() or dataset.transform.is_degenerate:
            self.close()
            raise OrthophotoError(f"{self.path}: the GeoTIFF has no georeference (no geotransform); it must say "
                                  "where its pixels lie")
        if not dataset.transform.is_rectilinear:
            self.close()
            raise OrthophotoError(f"{self.path}: rotated or sheared geotransforms are not supported")
        epsg = dataset.crs.to_epsg()
        self.crs = f"EPSG:{epsg}" if epsg else dataset.crs.to_wkt()
        self.transform = dataset.transform
        self.width, self.height = dataset.width, dataset.height
        self._init_frames()
        self._ground_mpp = super().ground_mpp()

    def ground_mpp(self) -> float:
        return self._ground_mpp

    def _read_region(self, col0: int, row0: int, width: int, height: int, step: int):
        window = Window(col0, row0, width, height)
        shape = (max(1, height // step), max(1, width // step))
        bands = list(range(1, min(self._dataset.count, 3) + 1))
        resampling = Resampling.average if step > 1 else Resampling.nearest
        try:
            pixels = self._dataset.read(bands, window=window, out_shape=(len(bands), *shape), resampling=resampling)
            mask = self._dataset.read_masks(1, window=window, out_shape=shape, resampling=Resampling.nearest)
        except (RasterioIOError, RasterioError) as error:
            raise OrthophotoError(f"{self.path}: cannot read pixels ({error})") from error
        transform = self._dataset.window_transform(window) @ Affine.scale(width / shape[1], height / shape[0])
        return _as_uint8(pixels), (mask > 0).astype(np.uint8)[None], transform

    def close(self) -> None:
        self._dataset.close()


def _numeric_children(folder: Path) -> dict[int, Path]:
    return {int(child.name): child for child in folder.iterdir() if child.is_dir() and child.name.isdigit()}


class XyzOrthophoto(Orthophoto):
    """A folder of Web-Mercator slippy-map tiles ``{z}/{x}/{y}.png`` (y = 0 at the north); one zoom level is used
    (the deepest present unless ``zoom`` is given)."""

    def __init__(self, path: str | os.PathLike, zoom: int | None = None) -> None:
        self.path = Path(path)
        levels = _numeric_children(self.path)
        tiles_at = {z: self._tile_files(folder) for z, folder in levels.items()}
        tiles_at = {z: files for z, files in tiles_at.items() if files}
        if not tiles_at:
            raise OrthophotoError(f"{self.path}: no XYZ tiles found (expected {{z}}/{{x}}/{{y}}.png files)")
        if zoom is None:
            zoom = max(tiles_at)
        if zoom not in tiles_at:
            raise OrthophotoError(f"{self.path}: no tiles at zoom {zoom} (zoom levels present: {sorted(tiles_at)})")
        self.zoom = int(zoom)
        self._files = tiles_at[self.zoom]
        first = next(iter(self._files.values()))
        try:
            with Image.open(first) as image:
                self.tile_px = int(image.width)
        except (UnidentifiedImageError, OSError) as error:
            raise OrthophotoError(f"{first}: not a readable tile image ({error})") from error
        xs = [x for x, _ in self._files]
        ys = [y for _, y in self._files]
        self._x0, self._y0 = min(xs), min(ys)
        self.width = (max(xs) - self._x0 + 1) * self.tile_px
        self.height = (max(ys) - self._y0 + 1) * self.tile_px
        tile_m = 2.0 * MERCATOR_HALF_WORLD_M / 2 ** self.zoom
        pixel_m = tile_m / self.tile_px
        self.transform = Affine(pixel_m, 0.0, -MERCATOR_HALF_WORLD_M + self._x0 * tile_m,
                                0.0, -pixel_m, MERCATOR_HALF_WORLD_M - self._y0 * tile_m)
        self.crs = MERCATOR
        self._init_frames()
        self._cache: OrderedDict[tuple[int, int], np.ndarray | None] = OrderedDict()

    @staticmethod
    def _tile_files(zoom_folder: Path) -> dict[tuple[int, int], Path]:
        files = {}
        for x, column in _numeric_children(zoom_folder).items():
            for tile in column.iterdir():
                stem, suffix = os.path.splitext(tile.name)
                if suffix.lower() in TILE_SUFFIXES and re.fullmatch(r"\d+", stem):
                    files[(x, int(stem))] = tile
        return files

    def _tile(self, x: int, y: int) -> np.ndarray | None:
        key = (x, y)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        path = self._files.get(key)
        pixels = None
        if path is not None:
            try:
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB").resize((self.tile_px, self.tile_px)))
            except (UnidentifiedImageError, OSError) as error:
                raise OrthophotoError(f"{path}: not a readable tile image ({error})") from error
        self._cache[key] = pixels
        if len(self._cache) > MAX_CACHED_TILES:
            self._cache.popitem(last=False)
        return pixels

    def _read_region(self, col0: int, row0: int, width: int, height: int, step: int):
        size = self.tile_px
        rgb = np.zeros((3, height, width), np.uint8)
        valid = np.zeros((1, height, width), np.uint8)
        for ty in range(math.floor(row0 / size), math.floor((row0 + height - 1) / size) + 1):
            for tx in range(math.floor(col0 / size), math.floor((col0 + width - 1) / size) + 1):
                pixels = self._tile(self._x0 + tx, self._y0 + ty)
                if pixels is None:
                    continue
                top, left = ty * size - row0, tx * size - col0
                r0, c0 = max(top, 0), max(left, 0)
                r1, c1 = min(top + size, height), min(left + size, width)
                rgb[:, r0:r1, c0:c1] = pixels[r0 - top: r1 - top, c0 - left: c1 - left].transpose(2, 0, 1)
                valid[:, r0:r1, c0:c1] = 1
        return rgb, valid, self.transform @ Affine.translation(col0, row0)


def open_orthophoto(path: str | os.PathLike, zoom: int | None = None) -> Orthophoto:
    """A GeoTIFF file (any CRS) or a folder of XYZ tiles ``{z}/{x}/{y}.png``.

    Raises:
        OrthophotoError: missing path, unreadable or un-georeferenced GeoTIFF, folder without tiles.
    """
    path = Path(path)
    if not path.exists():
        raise OrthophotoError(f"{path}: no such orthophoto (a GeoTIFF file or a folder of XYZ tiles)")
    if path.is_dir():
        return XyzOrthophoto(path, zoom)
    return GeoTiffOrthophoto(path)

"""A tile's georeference from what users have at hand: typed text, a GeoTIFF, or a world file.

- :func:`parse_number` and :func:`parse_latlon` read typed numbers locale-tolerantly: ``47,5766`` (a decimal
  comma) is 47.5766, never 475766; input that could mean two things (``47,5766`` where a "lat, lon" pair is
  expected, ``1.234,5``) is refused with a message that says how to write it.
- :func:`geotiff_georeference` reads a north-up GeoTIFF's ModelPixelScale/ModelTiepoint tags (EPSG:4326 or
  EPSG:3857) with Pillow.
- :func:`world_file_georeference` reads a world file (``.pgw``/``.pngw``/``.jgw``/``.tfw``/``.wld``) beside
  its tile: degrees when its numbers are degrees, else Web-Mercator metres (EPSG:3857).

Each returns the tile centre and its metres per pixel (continuous pixels: the centre is at S/2).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from geodistill.errors import DataError
from geodistill.geometry.frames import EARTH_RADIUS_M

MAX_LAT = 85.05112878
SQUARE_TOLERANCE = 0.02                 # the ground pixel must be square within 2 %
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180.0
WORLD_FILE_SUFFIXES = (".pgw", ".pngw", ".jgw", ".jpgw", ".tfw", ".tifw", ".wld")
MODEL_PIXEL_SCALE, MODEL_TIEPOINT, GEO_KEY_DIRECTORY = 33550, 33922, 34735
RASTER_TYPE_KEY, GEOGRAPHIC_TYPE_KEY, PROJECTED_TYPE_KEY = 1025, 2048, 3072
PIXEL_IS_POINT = 2
WGS84, WEB_MERCATOR = 4326, {3857, 3785, 900913, 102100}


@dataclass(frozen=True)
class TileGeoreference:
    """A tile's centre (degrees) and ground metres per pixel, and where they were read from."""

    lat: float
    lon: float
    meters_per_pixel: float
    source: str

    def latlon_text(self) -> str:
        return f"{self.lat:.7f}, {self.lon:.7f}"


def parse_number(text, field: str) -> float | None:
    """A typed number: None when empty; a decimal comma is accepted (``0,3`` is 0.3).

    Raises:
        DataError: naming ``field``: not a number, ambiguous (``1.234,5``, ``1,234,5``), not finite.
    """
    if text is None:
        return None
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        cleaned = str(text).strip().replace("\u2212", "-")
        if not cleaned:
            return None
        if "," in cleaned and ("." in cleaned or cleaned.count(",") > 1):
            raise DataError(f"{field}: {text!r} is ambiguous (thousands separator or decimal comma?); "
                            "write the number with one decimal point, e.g. 47.5766")
        try:
            value = float(cleaned.replace(",", "."))
        except ValueError:
            raise DataError(f"{field}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{field}: {text!r} is not a finite number")
    return value


def split_pair(text: str, field: str) -> tuple[str, str] | None:
    """Two numbers as typed (``a, b``, ``a;b``, ``a b``, ``a,b`` with decimal points, ``a,1 b,2``), or None when
    empty.

    Raises:
        DataError: naming ``field``: not two numbers, or ambiguous (``47,5766``: one number or two?).
    """
    cleaned = (text or "").strip().strip("()[]").strip()
    if not cleaned:
        return None
    parts = [part for part in re.split(r"\s*;\s*|,\s+|\s+", cleaned) if part]
    if len(parts) == 1 and cleaned.count(",") == 1 and "." in cleaned:
        parts = cleaned.split(",")
    if len(parts) != 2:
        hint = " (one number with a decimal comma, or two numbers?)" if len(parts) == 1 and "," in cleaned else ""
        raise DataError(f"{field}: {text!r} is not two numbers{hint}; write them like 47.5766, 8.5417 "
                        "(decimal points, a comma and a space between them)")
    return parts[0], parts[1]


def parse_latlon(text: str, field: str = "lat, lon") -> tuple[float, float] | None:
    """``"lat, lon"`` as typed or pasted (see :func:`split_pair`), checked against the Web-Mercator range; None
    when empty.

    Raises:
        DataError: naming ``field``: unreadable, ambiguous or out of range.
    """
    pair = split_pair(text, field)
    if pair is None:
        return None
    lat, lon = (parse_number(part, field) for part in pair)
    if not abs(lat) <= MAX_LAT:
        raise DataError(f"{field}: latitude {lat:g} is outside the Web-Mercator range ±{MAX_LAT:.4f} "
                        "(is it lat, lon in that order?)")
    if not -180.0 <= lon <= 180.0:
        raise DataError(f"{field}: longitude {lon:g} is outside [-180, 180]")
    return lat, lon


def _from_degrees(lon: float, lat: float, deg_x: float, deg_y: float, source: str) -> TileGeoreference:
    east_m = abs(deg_x) * METRES_PER_DEGREE * math.cos(math.radians(lat))
    north_m = abs(deg_y) * METRES_PER_DEGREE
    return _square(lat, lon, east_m, north_m, source)


def _from_mercator(x: float, y: float, step_x: float, step_y: float, source: str) -> TileGeoreference:
    lat = math.degrees(2.0 * math.atan(math.exp(y / EARTH_RADIUS_M)) - math.pi / 2.0)
    lon = math.degrees(x / EARTH_RADIUS_M)
    scale = math.cos(math.radians(lat))
    return _square(lat, lon, abs(step_x) * scale, abs(step_y) * scale, source)


def _square(lat: float, lon: float, east_m: float, north_m: float, source: str) -> TileGeoreference:
    if not (east_m > 0 and north_m > 0):
        raise DataError(f"{source}: the pixel size is zero")
    if abs(east_m / north_m - 1.0) > SQUARE_TOLERANCE:
        raise DataError(f"{source}: a pixel is {east_m:.3f} m wide and {north_m:.3f} m tall on the ground; the model "
                        "needs square pixels (reproject the tile to EPSG:3857)")
    if not (abs(lat) <= MAX_LAT and -180.0 <= lon <= 180.0):
        raise DataError(f"{source}: the tile centre {lat:.5f}, {lon:.5f} is outside the Web-Mercator range")
    return TileGeoreference(lat, lon, (east_m + north_m) / 2.0, source)


def _geo_keys(directory) -> dict[int, int]:
    values = [int(v) for v in directory or ()]
    return {values[i]: values[i + 3] for i in range(4, len(values) - 3, 4) if values[i + 1] == 0}


def geotiff_georeference(path: str | Path) -> TileGeoreference | None:
    """The georeference of a north-up GeoTIFF tile (EPSG:4326 or 3857), or None when the file has no GeoTIFF tags
    (or is no readable image: loading the tile reports that).

    Raises:
        DataError: naming the file: a rotated tile (a transformation matrix), another CRS, a non-square pixel.
    """
    path = Path(path)
    name = path.name
    try:
        with Image.open(path) as image:
            tags = dict(image.tag_v2) if hasattr(image, "tag_v2") else {}
            width, height = image.size
    except (OSError, SyntaxError):
        return None  # not a readable image: loading it says why
    if MODEL_PIXEL_SCALE not in tags or MODEL_TIEPOINT not in tags:
        if 34264 in tags:
            raise DataError(f"{name}: the GeoTIFF is rotated (a transformation matrix); use a north-up tile")
        return None
    scale_x, scale_y = (float(v) for v in tuple(tags[MODEL_PIXEL_SCALE])[:2])
    i, j, _, x, y = (float(v) for v in tuple(tags[MODEL_TIEPOINT])[:5])
    keys = _geo_keys(tags.get(GEO_KEY_DIRECTORY))
    offset = 0.5 if keys.get(RASTER_TYPE_KEY) == PIXEL_IS_POINT else 0.0  # a point tiepoint is a pixel's centre
    centre_x = x + (width / 2.0 - i - offset) * scale_x
    centre_y = y - (height / 2.0 - j - offset) * scale_y
    epsg = keys.get(PROJECTED_TYPE_KEY) or keys.get(GEOGRAPHIC_TYPE_KEY)
    source = f"{name} (GeoTIFF, EPSG:{epsg})"
    if epsg in WEB_MERCATOR:
        return _from_mercator(centre_x, centre_y, scale_x, scale_y, source)
    if epsg == WGS84:
        return _from_degrees(centre_x, centre_y, scale_x, scale_y, source)
    raise DataError(f"{name}: the GeoTIFF is in EPSG:{epsg}; the app reads EPSG:4326 or EPSG:3857 "
                    "(reproject it, e.g. gdalwarp -t_srs EPSG:3857)")


def world_file_georeference(world_file: str | Path, tile_size: tuple[int, int]) -> TileGeoreference:
    """The georeference of a tile of ``tile_size`` (width, height) from its world file.

    A world file holds six numbers: pixel width, two rotation terms, pixel height (negative), and the x, y of the
    upper-left pixel's centre. Numbers that fit degrees (|x| <= 180, |y| <= 90, pixel < 0.01) are read as
    EPSG:4326, others as Web-Mercator metres (EPSG:3857).

    Raises:
        DataError: naming the file: not six numbers, rotated, or a non-square pixel.
    """
    path = Path(world_file)
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        step_x, rot_y, rot_x, step_y, x0, y0 = (float(line) for line in lines)
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path.name}: cannot read the world file: {error}") from error
    except ValueError:
        raise DataError(f"{path.name}: a world file holds six numbers, one a line "
                        "(pixel width, two rotations, pixel height, x and y of the upper-left pixel)") from None
    if rot_x or rot_y:
        raise DataError(f"{path.name}: the tile is rotated (non-zero rotation terms); use a north-up tile")
    width, height = tile_size
    centre_x = x0 + (width / 2.0 - 0.5) * step_x  # (x0, y0) is the centre of the upper-left pixel
    centre_y = y0 + (height / 2.0 - 0.5) * step_y
    if abs(centre_x) <= 180.0 and abs(centre_y) <= 90.0 and abs(step_x) < 0.01:
        return _from_degrees(centre_x, centre_y, step_x, step_y, f"{path.name} (world file, degrees)")
    return _from_mercator(centre_x, centre_y, step_x, step_y, f"{path.name} (world file, EPSG:3857 metres)")


def is_world_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in WORLD_FILE_SUFFIXES

"""All frame conversions: GPS (lat, lon) <-> local metres <-> satellite tile pixels, and VIGOR labels.

Frames (see docs/conventions.md):

- GPS: WGS84 (lat, lon) in degrees, float64.
- Local metric xy: metres, +x east, +y north, origin at a reference point (the tile centre).
- Tile pixels uv: (column, row) on a north-up tile of ``size_px`` pixels, continuous, pixel i covers
  [i, i+1), so the tile centre is at (S/2, S/2); +u east, +v south.

Satellite tiles are Web-Mercator crops, so pixel offsets are linear in Mercator coordinates; local
metres are Mercator offsets scaled by cos(reference latitude), i.e. the true ground scale at the
reference point. Every function accepts floats, numpy arrays or torch tensors and returns the same kind.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

EARTH_RADIUS_M = 6378137.0
"""WGS84 equatorial radius, the sphere radius of Web-Mercator (EPSG:3857)."""

MERCATOR_METERS_PER_PIXEL_ZOOM0 = 2.0 * math.pi * EARTH_RADIUS_M / 256.0
"""Ground resolution of a 256-px zoom-0 Web-Mercator tile at the equator (156543.03392... m/px)."""

VIGOR_METERS_PER_PIXEL: dict[str, float] = {
    "NewYork": 0.113248,
    "Seattle": 0.100817,
    "SanFrancisco": 0.118141,
    "Chicago": 0.111262,
}
"""Metres per pixel of VIGOR's 640-px satellite tiles per city (the corrected values)."""

VIGOR_TILE_PX = 640
"""Side of a VIGOR satellite tile in pixels; VIGOR's (Δrow, Δcol) labels are in these pixels."""


def meters_per_pixel_at(lat_deg: Any, zoom: float) -> Any:
    """Web-Mercator ground resolution at a latitude and zoom level.

    Args:
        lat_deg: latitude(s) in degrees, any shape.
        zoom: zoom level (20 for VIGOR).

    Returns:
        Metres per pixel, same shape and kind as ``lat_deg``: ``156543.03392·cos(lat)/2^zoom``.

    Convention:
        256-px tiles at zoom 0, WGS84 equatorial radius.

    Example:
        >>> round(float(meters_per_pixel_at(0.0, 0)), 5)
        156543.03393
    """
    lib = _lib(lat_deg)
    return MERCATOR_METERS_PER_PIXEL_ZOOM0 * lib.cos(_as_float(lat_deg) * (math.pi / 180.0)) / 2.0**zoom


def latlon_to_xy(latlon: Any, latlon_ref: Any) -> Any:
    """GPS to local metres east/north of a reference point, through Web-Mercator.

    Args:
        latlon: (..., 2) (lat, lon) in degrees; use float64.
        latlon_ref: (..., 2) reference (lat, lon), broadcastable to ``latlon`` (e.g. the tile centre).

    Returns:
        (..., 2) metres (east, north) of the reference, float64 for float64 input.

    Convention:
        Mercator offsets scaled by cos(lat_ref): exact inverse of :func:`xy_to_latlon`, and linear in
        tile pixels (``xy = (uv - S/2)·(1, -1)·mpp`` when ``mpp`` is the Mercator resolution at lat_ref).

    Example:
        >>> xy = latlon_to_xy(np.array([0.0, 1e-3]), np.array([0.0, 0.0]))
        >>> [round(float(c), 3) for c in xy]
        [111.319, 0.0]
    """
    lat, lon = _split(latlon)
    lat_ref, lon_ref = _split(latlon_ref)
    lib = _lib(latlon)
    scale = lib.cos(lat_ref * (math.pi / 180.0))
    east = EARTH_RADIUS_M * (lon - lon_ref) * (math.pi / 180.0) * scale
    north = (_mercator_y(lat) - _mercator_y(lat_ref)) * scale
    return _stack(east, north)


def xy_to_latlon(xy: Any, latlon_ref: Any) -> Any:
    """Local metres east/north of a reference point to GPS; exact inverse of :func:`latlon_to_xy`.

    Args:
        xy: (..., 2) metres (east, north).
        latlon_ref: (..., 2) reference (lat, lon) in degrees, broadcastable to ``xy``.

    Returns:
        (..., 2) (lat, lon) in degrees (float64 for float64 input).

    Convention:
        Web-Mercator, local scale cos(lat_ref); +x east, +y north.

    Example:
        >>> ll = xy_to_latlon(np.array([111.319491, 0.0]), np.array([0.0, 0.0]))
        >>> [round(float(c), 6) for c in ll]
        [0.0, 0.001]
    """
    east, north = _split(xy)
    lat_ref, lon_ref = _split(latlon_ref)
    lib = _lib(xy)
    scale = lib.cos(lat_ref * (math.pi / 180.0))
    lon = lon_ref + east / scale / EARTH_RADIUS_M * (180.0 / math.pi)
    mercator_y = _mercator_y(lat_ref) + north / scale
    lat = (2.0 * lib.arctan(lib.exp(mercator_y / EARTH_RADIUS_M)) - math.pi / 2.0) * (180.0 / math.pi)
    return _stack(lat, lon)


def xy_to_uv(xy: Any, size_px: float, meters_per_pixel: Any) -> Any:
    """Local metres (origin at the tile centre) to tile pixels.

    Args:
        xy: (..., 2) metres (east, north) of the tile centre.
        size_px: tile side S in pixels.
        meters_per_pixel: metres per pixel of this tile, float or (...) broadcastable to ``xy[..., 0]``.

    Returns:
        (..., 2) continuous (u, v) = (column, row): ``u = S/2 + x/mpp``, ``v = S/2 - y/mpp``.

    Convention:
        North-up tile, +u east, +v south; pixel i covers [i, i+1) so the centre is S/2.
        A point north of the centre has a smaller v.

    Example:
        >>> xy_to_uv(np.array([1.0, 2.0]), 640, 0.5).tolist()
        [322.0, 316.0]
    """
    east, north = _split(xy)
    return _stack(size_px / 2.0 + east / meters_per_pixel, size_px / 2.0 - north / meters_per_pixel)


def uv_to_xy(uv: Any, size_px: float, meters_per_pixel: Any) -> Any:
    """Tile pixels to local metres east/north of the tile centre; inverse of :func:`xy_to_uv`.

    Args:
        uv: (..., 2) continuous (u, v) pixel coordinates.
        size_px: tile side S in pixels.
        meters_per_pixel: metres per pixel, float or broadcastable to ``uv[..., 0]``.

    Returns:
        (..., 2) metres (east, north): ``x = (u - S/2)·mpp``, ``y = (S/2 - v)·mpp``.

    Convention:
        North-up tile, +u east, +v south, pixel centre at i + 0.5, tile centre at S/2.

    Example:
        >>> uv_to_xy(np.array([322.0, 316.0]), 640, 0.5).tolist()
        [1.0, 2.0]
    """
    u, v = _split(uv)
    return _stack((u - size_px / 2.0) * meters_per_pixel, (size_px / 2.0 - v) * meters_per_pixel)


def latlon_to_uv(latlon: Any, latlon_center: Any, size_px: float, meters_per_pixel: Any) -> Any:
    """GPS to pixels of a north-up tile centred on ``latlon_center``.

    Args:
        latlon: (..., 2) (lat, lon) in degrees, float64.
        latlon_center: (..., 2) (lat, lon) of the tile centre.
        size_px: tile side S in pixels.
        meters_per_pixel: metres per pixel of the tile.

    Returns:
        (..., 2) continuous (u, v) pixel coordinates.

    Convention:
        :func:`latlon_to_xy` then :func:`xy_to_uv`; the tile centre is at (S/2, S/2).

    Example:
        >>> center = np.array([41.0, -87.0])
        >>> latlon_to_uv(center, center, 640, 0.11).tolist()
        [320.0, 320.0]
    """
    return xy_to_uv(latlon_to_xy(latlon, latlon_center), size_px, meters_per_pixel)


def uv_to_latlon(uv: Any, latlon_center: Any, size_px: float, meters_per_pixel: Any) -> Any:
    """Pixels of a north-up tile centred on ``latlon_center`` to GPS; inverse of :func:`latlon_to_uv`.

    Args:
        uv: (..., 2) continuous (u, v) pixel coordinates (float64 recommended).
        latlon_center: (..., 2) (lat, lon) of the tile centre, float64.
        size_px: tile side S in pixels.
        meters_per_pixel: metres per pixel of the tile.

    Returns:
        (..., 2) (lat, lon) in degrees.

    Convention:
        :func:`uv_to_xy` then :func:`xy_to_latlon`.

    Example:
        >>> center = np.array([41.0, -87.0])
        >>> uv_to_latlon(np.array([320.0, 320.0]), center, 640, 0.11).round(9).tolist()
        [41.0, -87.0]
    """
    return xy_to_latlon(uv_to_xy(uv, size_px, meters_per_pixel), latlon_center)


def resize_meters_per_pixel(meters_per_pixel: Any, from_px: float, to_px: float) -> Any:
    """Metres per pixel after resizing a tile from ``from_px`` to ``to_px`` pixels per side.

    Args:
        meters_per_pixel: resolution at ``from_px``, float or array/tensor of any shape.
        from_px: original tile side in pixels.
        to_px: new tile side in pixels.

    Returns:
        ``mpp · from_px / to_px`` (same ground footprint).

    Convention:
        The tile keeps its footprint; only the pixel size changes.

    Example:
        >>> resize_meters_per_pixel(0.113248, 640, 512)
        0.14156
    """
    return meters_per_pixel * (from_px / to_px)


def resize_uv(uv: Any, from_px: float, to_px: float) -> Any:
    """Pixel coordinates on a tile resized from ``from_px`` to ``to_px`` pixels per side.

    Args:
        uv: (..., 2) continuous pixel coordinates at ``from_px``.
        from_px: original side in pixels.
        to_px: new side in pixels.

    Returns:
        (..., 2) ``uv · to_px / from_px``.

    Convention:
        Continuous coordinates with the origin at the top-left corner scale linearly (pixel i covers
        [i, i+1) at both sizes), so the tile centre maps to the tile centre.

    Example:
        >>> resize_uv(np.array([320.0, 343.0]), 640, 512).round(6).tolist()
        [256.0, 274.4]
    """
    return uv * (to_px / from_px)


def vigor_delta_to_uv(delta_row: Any, delta_col: Any, size_px: float) -> Any:
    """VIGOR label offsets (Δrow, Δcol), in 640-px pixels, to the camera pixel on a tile of ``size_px``.

    Args:
        delta_row: Δrow, float or array/tensor; > 0 means the camera is south of the tile centre.
        delta_col: Δcol, same shape; > 0 means the camera is **west** of the tile centre.
        size_px: side of the tile the result refers to (640 for the original, 512 as fed to the model).

    Returns:
        (..., 2) camera pixel (u, v): ``u = S/2 - Δcol·S/640``, ``v = S/2 + Δrow·S/640``.

    Convention:
        VIGOR's ``row = 320 + Δrow``, ``col = 320 - Δcol`` at 640 px; pixel centres at i + 0.5.

    Example:
        >>> vigor_delta_to_uv(23.0, -29.0, 640).tolist()
        [349.0, 343.0]
        >>> vigor_delta_to_uv(23.0, -29.0, 512).tolist()
        [279.2, 274.4]
    """
    scale = size_px / VIGOR_TILE_PX
    return _stack(size_px / 2.0 - _as_float(delta_col) * scale, size_px / 2.0 + _as_float(delta_row) * scale)


def uv_to_vigor_delta(uv: Any, size_px: float) -> tuple[Any, Any]:
    """Camera pixel on a tile of ``size_px`` to VIGOR label offsets at 640 px; inverse of
    :func:`vigor_delta_to_uv`.

    Args:
        uv: (..., 2) continuous (u, v) pixel coordinates on a tile of ``size_px``.
        size_px: side of that tile in pixels.

    Returns:
        (delta_row, delta_col), each (...), in 640-px pixels.

    Convention:
        ``Δrow = (v - S/2)·640/S`` (> 0 south), ``Δcol = (S/2 - u)·640/S`` (> 0 west).

    Example:
        >>> [round(float(d), 9) for d in uv_to_vigor_delta(np.array([279.2, 274.4]), 512)]
        [23.0, -29.0]
    """
    u, v = _split(uv)
    scale = VIGOR_TILE_PX / size_px
    return (v - size_px / 2.0) * scale, (size_px / 2.0 - u) * scale


def _lib(value: Any) -> Any:
    return torch if isinstance(value, torch.Tensor) else np


def _as_float(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value if value.is_floating_point() else value.double()
    return np.asarray(value, dtype=np.float64) if not isinstance(value, float) else value


def _split(pairs: Any) -> tuple[Any, Any]:
    pairs = _as_float(pairs)
    if pairs.shape[-1] != 2:
        raise ValueError(f"expected a (..., 2) array of coordinate pairs, got shape {tuple(pairs.shape)}")
    return pairs[..., 0], pairs[..., 1]


def _stack(first: Any, second: Any) -> Any:
    if isinstance(first, torch.Tensor) or isinstance(second, torch.Tensor):
        first, second = torch.broadcast_tensors(torch.as_tensor(first), torch.as_tensor(second))
        return torch.stack([first, second], dim=-1)
    return np.stack(np.broadcast_arrays(first, second), axis=-1)


def _mercator_y(lat_deg: Any) -> Any:
    lib = _lib(lat_deg)
    return EARTH_RADIUS_M * lib.log(lib.tan(math.pi / 4.0 + lat_deg * (math.pi / 360.0)))

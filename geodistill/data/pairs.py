"""Users' own data: a panorama (or a pinhole photo) and a north-up satellite tile with its georeference.

Inputs may be file paths, PIL images, numpy arrays or tensors. Wrong shapes are refused with a message that
says what was given and what is expected; see :mod:`geodistill.data.images` for the file-level checks
(corrupt, truncated, huge, 16-bit, RGBA, grayscale, EXIF rotation).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from geodistill.data.collate import assemble_sample
from geodistill.data.images import MAX_PIXELS, check_pixel_count, read_rgb, resize_column_mask, resize_image, to_chw_tensor
from geodistill.errors import DataError
from geodistill.geometry.frames import latlon_to_xy, meters_per_pixel_at, resize_uv, uv_to_xy, xy_to_latlon, xy_to_uv
from geodistill.geometry.grid import sample_image

logger = logging.getLogger("geodistill.data.pairs")

PANO_ASPECT_TOLERANCE = 0.01
MIN_PANO_HEIGHT = 16
MIN_SAT_SIZE = 32
MAX_MERCATOR_LAT = 85.05112878
MPP_MIN, MPP_MAX = 0.01, 20.0  # plausible ground resolution of a satellite tile, metres per pixel
MAX_PINHOLE_CANVAS_HEIGHT = 1024


@dataclass
class PanoramaImage:
    """An equirectangular panorama (3,H,2H) float32 in [0, 1] with its visible columns (2H,) bool."""

    image: torch.Tensor
    fov_mask: torch.Tensor
    name: str = ""
    hfov_deg: float | None = None  # set when the panorama was built from a pinhole photo


@dataclass
class SatelliteImage:
    """A square north-up satellite tile (3,S,S) float32 in [0, 1]."""

    image: torch.Tensor
    name: str = ""


def _read(source, max_pixels: int, draft_size: tuple[int, int] | None = None) -> tuple[torch.Tensor, str]:
    if isinstance(source, (str, os.PathLike)):
        return read_rgb(source, max_pixels, draft_size), os.path.basename(os.fspath(source))
    image = to_chw_tensor(source)
    check_pixel_count(image.shape[-1], image.shape[-2], max_pixels, "image")
    return image, ""


def pinhole_to_equirectangular(
    photo: torch.Tensor, hfov_deg: float, canvas_height: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place a level pinhole photo, looking along the panorama centre line, into an equirectangular canvas.

    Args:
        photo: (3,h,w) image in [0, 1].
        hfov_deg: its horizontal field of view, in (0, 180).
        canvas_height: panorama height H (width 2H); default keeps the photo's horizontal resolution.

    Returns:
        (pano (3,H,2H), fov_mask (2H,) bool): pixels outside the photo are 0, columns outside its FoV False.
    """
    if not 0.0 < hfov_deg < 180.0:
        raise DataError(f"a pinhole photo needs a horizontal field of view between 0 and 180 degrees, got {hfov_deg}")
    _, h, w = photo.shape
    if canvas_height is None:
        canvas_height = int(min(MAX_PINHOLE_CANVAS_HEIGHT, max(64, round(w * 180.0 / hfov_deg))))
    width = 2 * canvas_height
    azimuth = torch.deg2rad((torch.arange(width, dtype=torch.float64) + 0.5) * 360.0 / width - 180.0)
    elevation = torch.deg2rad(90.0 - (torch.arange(canvas_height, dtype=torch.float64) + 0.5) * 180.0 / canvas_height)
    elevation, azimuth = torch.meshgrid(elevation, azimuth, indexing="ij")  # H,W each
    right = torch.cos(elevation) * torch.sin(azimuth)
    up = torch.sin(elevation)
    forward = torch.cos(elevation) * torch.cos(azimuth)
    focal = (w / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    ahead = forward > 1e-6
    safe = torch.where(ahead, forward, torch.ones_like(forward))
    u = torch.where(ahead, w / 2.0 + focal * right / safe, torch.full_like(forward, -1e6))
    v = torch.where(ahead, h / 2.0 - focal * up / safe, torch.full_like(forward, -1e6))
    uv = torch.stack([u, v], dim=-1).to(torch.float32)  # H,W,2
    pano = sample_image(photo[None], uv[None])[0].clamp(0.0, 1.0)  # 3,H,W
    inside = (u >= 0) & (u <= w) & (v >= 0) & (v <= h)
    pano = pano * inside.to(pano.dtype)
    fov_mask = torch.rad2deg(azimuth[0]).abs() < hfov_deg / 2.0
    return pano, fov_mask


def load_panorama(source, hfov_deg: float | None = None, max_pixels: int = MAX_PIXELS,
                  decode_height: int | None = None) -> PanoramaImage:
    """Load a 2:1 equirectangular panorama, or a pinhole photo when ``hfov_deg`` is given.

    Args:
        source: file path, PIL image, numpy (H,W[,C]) array or (3,H,W) tensor.
        hfov_deg: horizontal field of view of a pinhole photo (the photo is placed into a panorama
            canvas facing the centre line, and the columns outside its FoV are masked).
        max_pixels: largest accepted image.
        decode_height: the height the caller will use (e.g. the model's); a big panorama file is then decoded
            at a reduced size that is still at least this tall (fast: JPEG draft mode, integer reduction).
    """
    draft = (2 * decode_height, decode_height) if decode_height and hfov_deg is None else None
    image, name = _read(source, max_pixels, draft)
    height, width = image.shape[-2:]
    label = name or "panorama"
    if hfov_deg is not None:
        pano, mask = pinhole_to_equirectangular(image, float(hfov_deg))
        return PanoramaImage(pano, mask, name, float(hfov_deg))
    if abs(width / height - 2.0) > 2.0 * PANO_ASPECT_TOLERANCE:
        raise DataError(
            f"{label}: image is {width}x{height} (aspect {width / height:.2f}:1); an equirectangular panorama must be "
            f"twice as wide as it is tall (e.g. 2048x1024). For an ordinary photo, give its horizontal field of view "
            f"so it is loaded as a pinhole image"
        )
    if height < MIN_PANO_HEIGHT:
        raise DataError(f"{label}: panorama is only {width}x{height}; expected at least {2 * MIN_PANO_HEIGHT}x{MIN_PANO_HEIGHT}")
    return PanoramaImage(image, torch.ones(width, dtype=torch.bool), name)


def load_satellite(source, max_pixels: int = MAX_PIXELS) -> SatelliteImage:
    """Load a square north-up satellite tile of any size (at least 32 px)."""
    image, name = _read(source, max_pixels)
    height, width = image.shape[-2:]
    label = name or "satellite tile"
    if width != height:
        raise DataError(
            f"{label}: tile is {width}x{height}; a satellite tile must be square (e.g. 640x640), north-up and centred "
            f"on the given latitude/longitude; crop it to a square around that point"
        )
    if width < MIN_SAT_SIZE:
        raise DataError(f"{label}: tile is only {width}x{height}; expected at least {MIN_SAT_SIZE}x{MIN_SAT_SIZE}")
    return SatelliteImage(image, name)


def check_meters_per_pixel(value: float, what: str = "metres per pixel") -> float:
    """``value`` if it is a plausible ground resolution of a satellite tile ([MPP_MIN, MPP_MAX] m/px), else DataError."""
    if not (math.isfinite(value) and MPP_MIN <= value <= MPP_MAX):
        raise DataError(f"{what}: {value:g} m/px is outside the plausible range {MPP_MIN:g}-{MPP_MAX:g} m/px of a "
                        "satellite tile (VIGOR's are about 0.1 m/px)")
    return value


@dataclass(frozen=True)
class GeoReference:
    """Where a tile is: its centre (lat, lon) and its scale, as metres per pixel or a Web-Mercator zoom.

    ``meters_per_pixel`` is for the tile as given. ``zoom`` (with ``scale`` 2 for "@2x"/retina tiles) gives
    ``156543.03392·cos(lat)/2^zoom/scale``. Without lat/lon the tile still has a scale but no GPS.
    """

    lat: float | None = None
    lon: float | None = None
    meters_per_pixel: float | None = None
    zoom: float | None = None
    scale: float = 1.0

    def __post_init__(self):
        if (self.lat is None) != (self.lon is None):
            raise DataError("give both latitude and longitude of the tile centre, or neither")
        if self.lat is not None:
            if not (math.isfinite(self.lat) and abs(self.lat) <= MAX_MERCATOR_LAT):
                raise DataError(f"latitude {self.lat} is outside the Web-Mercator range ±{MAX_MERCATOR_LAT:.4f}")
            if not (math.isfinite(self.lon) and -180.0 <= self.lon <= 180.0):
                raise DataError(f"longitude {self.lon} is outside [-180, 180]")
        if self.meters_per_pixel is None and self.zoom is None:
            raise DataError("the tile's scale is unknown: give metres per pixel, or latitude/longitude with a zoom level")
        if self.meters_per_pixel is not None:
            check_meters_per_pixel(self.meters_per_pixel, "metres per pixel")
        if self.zoom is not None:
            if self.lat is None:
                raise DataError("a zoom level needs the tile-centre latitude to give metres per pixel")
            if not 0 <= self.zoom <= 24 or not self.scale > 0:
                raise DataError(f"zoom must be in [0, 24] and scale positive, got zoom {self.zoom}, scale {self.scale}")
            if self.meters_per_pixel is not None:
                from_zoom = self._zoom_meters_per_pixel()
                if abs(from_zoom / self.meters_per_pixel - 1.0) > 0.01:
                    raise DataError(
                        f"metres per pixel {self.meters_per_pixel} disagrees with zoom {self.zoom} at latitude "
                        f"{self.lat} ({from_zoom:.6f} m/px); give only one of them"
                    )
            check_meters_per_pixel(self._zoom_meters_per_pixel(), f"zoom {self.zoom:g} at latitude {self.lat:g}")

    def _zoom_meters_per_pixel(self) -> float:
        return float(meters_per_pixel_at(float(self.lat), float(self.zoom))) / self.scale

    def tile_meters_per_pixel(self) -> float:
        """Metres per pixel of the tile as given."""
        return float(self.meters_per_pixel) if self.meters_per_pixel is not None else self._zoom_meters_per_pixel()

    @property
    def latlon(self) -> tuple[float, float] | None:
        return None if self.lat is None else (float(self.lat), float(self.lon))


def make_sample(pano_img, sat_img, georef: GeoReference, pano_height: int = 320, sat_size: int = 512,
                gt_latlon: tuple[float, float] | None = None, gt_uv: tuple[float, float] | None = None,
                heading_deg: float = 0.0, camera_height_m: float = 2.0) -> dict:
    """A ``keys.py`` sample from a user's panorama and tile; ``has_gt`` only when a ground truth is given.

    Args:
        pano_img: :class:`PanoramaImage`, or anything :func:`load_panorama` accepts.
        sat_img: :class:`SatelliteImage`, or anything :func:`load_satellite` accepts.
        georef: the tile's georeference.
        pano_height: panorama height fed to the model (width 2x).
        sat_size: tile side fed to the model.
        gt_latlon: optional true camera (lat, lon) (needs a georeferenced tile).
        gt_uv: optional true camera pixel (u, v) on the tile as given (before resizing).
        heading_deg: heading of the panorama centre line, degrees clockwise from north (0 = north-aligned).
        camera_height_m: camera height above the ground.
    """
    pano = pano_img if isinstance(pano_img, PanoramaImage) else load_panorama(pano_img)
    sat = sat_img if isinstance(sat_img, SatelliteImage) else load_satellite(sat_img)
    if gt_latlon is not None and gt_uv is not None:
        raise DataError("give the ground truth either as lat/lon or as a tile pixel, not both")
    native = sat.image.shape[-1]
    mpp_fed = georef.tile_meters_per_pixel() * native / sat_size
    latlon_sat = georef.latlon
    uv = xy = latlon_gt = None
    if gt_latlon is not None:
        if latlon_sat is None:
            raise DataError("a ground-truth lat/lon needs the tile-centre lat/lon in the georeference")
        latlon_gt = np.asarray(gt_latlon, dtype=np.float64)
        xy = latlon_to_xy(latlon_gt, np.asarray(latlon_sat, dtype=np.float64))
        uv = xy_to_uv(xy, sat_size, mpp_fed)
    elif gt_uv is not None:
        uv = resize_uv(np.asarray(gt_uv, dtype=np.float64), native, sat_size)
        xy = uv_to_xy(uv, sat_size, mpp_fed)
        latlon_gt = None if latlon_sat is None else xy_to_latlon(xy, np.asarray(latlon_sat, dtype=np.float64))
    if uv is not None and not bool(np.all((np.asarray(uv) >= 0) & (np.asarray(uv) <= sat_size))):
        logger.warning("the ground-truth position %s lies outside the %d-px tile", np.asarray(uv).round(1).tolist(), sat_size)
    mask = resize_column_mask(pano.fov_mask, 2 * pano_height)
    pano_fed = resize_image(pano.image, (pano_height, 2 * pano_height)) * mask.to(torch.float32)
    return assemble_sample(
        pano=pano_fed,
        sat=resize_image(sat.image, (sat_size, sat_size)),
        meters_per_pixel=mpp_fed,
        uv_gt=None if uv is None else np.asarray(uv, dtype=np.float64),
        xy_gt=None if xy is None else np.asarray(xy, dtype=np.float64),
        latlon_sat=latlon_sat,
        latlon_gt=None if latlon_gt is None else np.asarray(latlon_gt, dtype=np.float64),
        fov_mask=mask,
        heading_deg=heading_deg,
        camera_height_m=camera_height_m,
        city="custom",
        pano_name=pano.name,
        sat_name=sat.name,
        sat_file_side=native,
    )

"""The ground scale a localizer was trained at, and the tiles ``refine`` cuts for it.

A checkpoint localizes on tiles of ``sat_size`` pixels whose scale is that of its training tiles: 640-px tiles at
the training cities' metres per pixel (``<City>/metadata.json`` of its data root, else VIGOR's table) resized to
``sat_size``. ``refine`` cuts its tiles at that scale, coarser only when the GPS prior's uncertainty would not fit
in the part of the tile the model searches.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass

import numpy as np
import torch

from geodistill import settings
from geodistill.data.collate import assemble_sample
from geodistill.data.vigor import city_meters_per_pixel
from geodistill.geometry.frames import VIGOR_METERS_PER_PIXEL, resize_meters_per_pixel
from geodistill.inference import Localizer

logger = logging.getLogger("geodistill.area.scale")

VIGOR_TILE_PX = 640
PRIOR_SIGMAS_IN_VIEW = 2.5  # the prior's uncertainty that must lie inside the searched part of the tile
MAX_COARSENING = 1.5        # a tile is never coarser than this times the model's scale


@dataclass(frozen=True)
class TilePlan:
    """The tiles cut around each prior: ``size_px`` pixels at ``meters_per_pixel``; the model searches within
    ``search_radius_m`` of the centre; ``model_mpp`` is the scale it was trained at."""

    size_px: int
    meters_per_pixel: float
    model_mpp: float
    search_radius_m: float


def model_meters_per_pixel(localizer: Localizer) -> float:
    """Metres per pixel of the localizer's input tile (``sat_size`` pixels) at its training scale."""
    root = settings.resolve_path(localizer.config.data.root, settings.data_dir())
    cities = sorted(d.name for d in root.iterdir() if (d / "metadata.json").is_file()) if root and root.is_dir() \
        else []
    if cities:
        mpp_640 = statistics.fmean(city_meters_per_pixel(root, city) for city in cities)
    else:
        mpp_640 = statistics.fmean(VIGOR_METERS_PER_PIXEL.values())
        logger.info("training data %s not found: taking VIGOR's mean scale %.4f m/px at 640 px", root, mpp_640)
    return float(resize_meters_per_pixel(mpp_640, VIGOR_TILE_PX, localizer.sat_size))


def search_radius_m(localizer: Localizer, meters_per_pixel: float) -> float:
    """How far from the tile centre the localizer can place the camera, in metres: the half extent of its
    probability map (one forward pass on a blank input), and at most half the side of the centred square it searches
    (``model.search_region``: a model searching the central half of a 72 m tile places the camera within ±18 m; the
    cells outside keep a small probability, so the map alone would claim the whole tile)."""
    size = localizer.sat_size
    region_m = float(localizer.config.model.search_region) * size / 2.0 * meters_per_pixel
    sample = assemble_sample(torch.zeros(3, localizer.pano_height, 2 * localizer.pano_height),
                             torch.zeros(3, size, size), meters_per_pixel, None, None, None, None)
    prediction = localizer.predict_batch([sample], estimate_heading=False)[0]
    rows, cols = np.nonzero(prediction.prob_on_tile > 0)
    if rows.size == 0:
        return region_m
    extent_px = max(size / 2.0 - min(rows.min(), cols.min()), max(rows.max(), cols.max()) + 1 - size / 2.0)
    return min(float(extent_px * meters_per_pixel), region_m)


def plan_tiles(localizer: Localizer, prior_sigma_m: float) -> TilePlan:
    """The tile size and scale for a prior of ``prior_sigma_m`` metres (coarser than the model's scale only as much
    as needed to keep 2.5 sigma inside the searched part, and at most 1.5 times)."""
    model_mpp = model_meters_per_pixel(localizer)
    radius = search_radius_m(localizer, model_mpp)
    needed = PRIOR_SIGMAS_IN_VIEW * prior_sigma_m
    factor = min(max(1.0, needed / radius), MAX_COARSENING)
    if needed > radius * factor:
        logger.warning("the prior's %.1f sigma (%.0f m) is wider than the %.0f m the model searches around the GPS "
                       "position; a panorama farther than that from its GPS position cannot be placed correctly",
                       PRIOR_SIGMAS_IN_VIEW, needed, radius * factor)
    return TilePlan(localizer.sat_size, model_mpp * factor, model_mpp, radius * factor)

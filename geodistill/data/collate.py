"""Building one sample dict (the ``keys.py`` contract) and stacking samples into a batch."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from geodistill import keys
from geodistill.errors import DataError


def assemble_sample(
    pano: torch.Tensor,
    sat: torch.Tensor,
    meters_per_pixel: float,
    uv_gt: Sequence[float] | torch.Tensor | None,
    xy_gt: Sequence[float] | torch.Tensor | None,
    latlon_sat: Sequence[float] | None,
    latlon_gt: Sequence[float] | None,
    fov_mask: torch.Tensor | None = None,
    heading_deg: float = 0.0,
    camera_height_m: float = 2.0,
    city: str = "custom",
    pano_name: str = "",
    sat_name: str = "",
    index: int = 0,
    sat_file_side: int | None = None,
) -> dict:
    """A sample dict with every key of :data:`geodistill.keys.SAMPLE_KEYS`, in the documented dtypes.

    Args:
        pano: (3,Hp,Wp) float32 in [0, 1].
        sat: (3,S,S) float32 in [0, 1].
        meters_per_pixel: of ``sat`` as given here.
        uv_gt: (2,) camera pixel on ``sat``, or None when there is no ground truth (stored as NaN).
        xy_gt: (2,) camera metres east/north of the tile centre, or None.
        latlon_sat: tile-centre (lat, lon), or None (NaN).
        latlon_gt: camera (lat, lon), or None (NaN).
        fov_mask: (Wp,) bool visible columns; None means all visible.
        sat_file_side: side of the tile file the sample was read from; None means ``sat`` is the file as read.
    """
    has_gt = uv_gt is not None
    nan2 = (math.nan, math.nan)
    width = pano.shape[-1]
    mask = torch.ones(width, dtype=torch.bool) if fov_mask is None else fov_mask.to(torch.bool).reshape(width)
    return {
        keys.PANO: pano.to(torch.float32).contiguous(),
        keys.SAT: sat.to(torch.float32).contiguous(),
        keys.METERS_PER_PIXEL: torch.tensor(meters_per_pixel, dtype=torch.float32),
        keys.UV_GT: torch.as_tensor(uv_gt if has_gt else nan2, dtype=torch.float32).reshape(2).clone(),
        keys.XY_GT: torch.as_tensor(xy_gt if xy_gt is not None else nan2, dtype=torch.float32).reshape(2).clone(),
        keys.HEADING_GT: torch.tensor(heading_deg % 360.0, dtype=torch.float32),
        keys.LATLON_SAT: torch.as_tensor(latlon_sat if latlon_sat is not None else nan2, dtype=torch.float64).reshape(2).clone(),
        keys.LATLON_GT: torch.as_tensor(latlon_gt if latlon_gt is not None else nan2, dtype=torch.float64).reshape(2).clone(),
        keys.FOV_MASK: mask,
        keys.CAMERA_HEIGHT_M: torch.tensor(camera_height_m, dtype=torch.float32),
        keys.HAS_GT: torch.tensor(has_gt, dtype=torch.bool),
        keys.CITY: city,
        keys.PANO_NAME: pano_name,
        keys.SAT_NAME: sat_name,
        keys.INDEX: int(index),
        keys.SAT_FILE_SIDE: int(sat.shape[-1] if sat_file_side is None else sat_file_side),
    }


def collate_samples(samples: Sequence[dict]) -> dict:
    """Stack sample dicts into a batch: tensors and arrays gain a leading B axis, everything else becomes a list.

    Args:
        samples: non-empty list of sample dicts with identical keys and per-key shapes.

    Returns:
        A batch dict with the same keys (e.g. ``pano`` (B,3,Hp,Wp), ``city`` list of B strings).
    """
    if not samples:
        raise ValueError("collate_samples needs at least one sample")
    names = list(samples[0])
    for position, sample in enumerate(samples[1:], start=1):
        if set(sample) != set(names):
            difference = sorted(set(sample) ^ set(names))
            raise DataError(f"sample {position} of the batch has different keys from sample 0: {difference}")
    batch = {}
    for name in names:
        values = [sample[name] for sample in samples]
        first = values[0]
        if isinstance(first, (torch.Tensor, np.ndarray)):
            tensors = [torch.as_tensor(value) for value in values]
            shapes = {tuple(tensor.shape) for tensor in tensors}
            if len(shapes) > 1:
                raise DataError(f"cannot batch '{name}': samples have different shapes {sorted(shapes)}")
            batch[name] = torch.stack(tensors)
        else:
            batch[name] = values
    return batch

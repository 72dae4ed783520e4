"""Equirectangular panoramas: column <-> azimuth, rolling by a heading change, FoV windows.

A panorama of width W spans 360° of azimuth. Column u (continuous, pixel i covers [i, i+1)) looks at
azimuth ``360·u/W - 180`` degrees clockwise from the panorama's heading: the centre line u = W/2 faces
the heading (north for VIGOR), u = 3W/4 is 90° to the right (east), u = W/4 to the left (west) and the
seam u = 0 = W is behind.
"""

from __future__ import annotations

from typing import Any

import torch

from geodistill.geometry.angles import wrap_deg, wrap_deg_signed
from geodistill.geometry.fov import column_offsets_deg, fov_column_mask
from geodistill.geometry.shapes import check_shape


def column_to_azimuth_deg(u: Any, width: int) -> Any:
    """Azimuth of a panorama column relative to the panorama heading.

    Args:
        u: continuous column(s), any shape (float, array or tensor).
        width: panorama width W in pixels.

    Returns:
        Azimuth in degrees in [-180, 180), clockwise from the centre line.

    Convention:
        ``azimuth = 360·u/W - 180``; column i's centre is i + 0.5; u = W/2 -> 0, u = 3W/4 -> +90 (east of
        the heading).

    Example:
        >>> column_to_azimuth_deg(768.0, 1024), column_to_azimuth_deg(0.0, 1024)
        (90.0, -180.0)
    """
    return wrap_deg_signed(u * (360.0 / width) - 180.0)


def azimuth_to_column(azimuth_deg: Any, width: int) -> Any:
    """Continuous panorama column looking at an azimuth relative to the panorama heading.

    Args:
        azimuth_deg: azimuth(s) in degrees clockwise from the centre line, any shape.
        width: panorama width W.

    Returns:
        Continuous column in [0, W), same shape.

    Convention:
        ``u = W·wrap360(azimuth + 180)/360``; inverse of :func:`column_to_azimuth_deg`.

    Example:
        >>> azimuth_to_column(-90.0, 1024), azimuth_to_column(180.0, 1024)
        (256.0, 0.0)
    """
    return wrap_deg(azimuth_deg + 180.0) * (width / 360.0)


def roll_panorama(pano: torch.Tensor, delta_deg: float | torch.Tensor) -> torch.Tensor:
    """The panorama seen after the camera turns clockwise by ``delta_deg`` (heading + delta).

    Args:
        pano: (B, C, H, W) or (C, H, W) panorama.
        delta_deg: turn in degrees, a float or a (B,) tensor (one per panorama). Fractional column shifts
            are linearly interpolated between neighbouring columns (circularly).

    Returns:
        The rolled panorama, same shape and dtype.

    Convention:
        Content moves **left** by ``delta/360·W`` columns: ``out[..., u] = pano[..., u + delta·W/360]``,
        so a marker on the centre line moves to azimuth ``-delta`` (u = W/4 for delta = +90).
        The reference implementation's injected yaw has the opposite sign.

    Example:
        >>> pano = torch.arange(4.0).view(1, 1, 4)
        >>> roll_panorama(pano, 90.0).tolist()
        [[[1.0, 2.0, 3.0, 0.0]]]
    """
    unbatched = pano.dim() == 3
    if unbatched:
        pano = pano.unsqueeze(0)
    batch, _, height, width = check_shape(pano, "B C H W", "pano").values()
    delta = torch.as_tensor(delta_deg, dtype=torch.float64, device=pano.device).reshape(-1)
    if delta.numel() not in (1, batch):
        raise ValueError(f"delta_deg must be a float or have {batch} values, got {delta.numel()}")
    shift = (delta * (width / 360.0)).expand(batch)  # B, in columns
    whole = torch.floor(shift)
    fraction = (shift - whole).to(pano.dtype).view(batch, 1, 1, 1)
    columns = torch.arange(width, device=pano.device)
    index = (columns.view(1, width) + whole.long().view(batch, 1)) % width  # B,W
    index = index.view(batch, 1, 1, width).expand(batch, pano.shape[1], height, width)
    left = torch.gather(pano, -1, index)
    right = torch.gather(pano, -1, (index + 1) % width)
    rolled = left if bool((fraction == 0).all()) else left * (1 - fraction) + right * fraction
    return rolled.squeeze(0) if unbatched else rolled


def extract_fov_window(pano: torch.Tensor, fov_deg: float, center_deg: float) -> torch.Tensor:
    """Crop the columns of a FoV window, wrapping across the seam, ordered left to right.

    Args:
        pano: (..., H, W) panorama (any leading axes).
        fov_deg: window width in degrees, in (0, 360].
        center_deg: window centre in degrees clockwise from the panorama centre line.

    Returns:
        (..., H, w) the kept columns, where w ≈ fov/360·W (the columns of
        :func:`geodistill.geometry.fov.fov_column_mask`), starting at the window's left edge.

    Convention:
        A column is kept when its centre azimuth lies in [center - fov/2, center + fov/2).

    Example:
        >>> pano = torch.arange(8.0).view(1, 8)
        >>> extract_fov_window(pano, 90.0, 180.0).tolist()  # across the seam
        [[7.0, 0.0]]
    """
    width = pano.shape[-1]
    offsets = column_offsets_deg(width, center_deg, device=pano.device)  # W
    keep = fov_column_mask(width, fov_deg, center_deg, device=pano.device)  # W
    order = torch.argsort(offsets)
    return pano[..., order[keep[order]]]

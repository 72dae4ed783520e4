"""Field of view: panorama column masks, their cone on the BEV grid, and a seeded FoV sampler."""

from __future__ import annotations

from typing import Literal

import torch

from geodistill.geometry.angles import wrap_deg_signed
from geodistill.geometry.grid import sample_panorama
from geodistill.geometry.shapes import check_shape


def column_offsets_deg(
    width: int, center_deg: float | torch.Tensor, device: torch.device | str | None = None
) -> torch.Tensor:
    """Signed azimuth of each column centre relative to a direction.

    Args:
        width: panorama width W.
        center_deg: direction in degrees from the centre line, a float or a (B,) tensor.
        device: device of the result.

    Returns:
        (W,) or (B, W) float64 offsets in [-180, 180).

    Convention:
        Column i's centre (i + 0.5) is at azimuth ``360·(i + 0.5)/W - 180``.

    Example:
        >>> column_offsets_deg(4, 0.0).tolist()
        [-135.0, -45.0, 45.0, 135.0]
    """
    if isinstance(center_deg, torch.Tensor) and device is None:
        device = center_deg.device
    center = torch.as_tensor(center_deg, dtype=torch.float64, device=device)
    azimuth = (torch.arange(width, dtype=torch.float64, device=device) + 0.5) * (360.0 / width) - 180.0
    return wrap_deg_signed(azimuth - center.unsqueeze(-1))


def fov_column_mask(
    width: int,
    fov_deg: float | torch.Tensor,
    center_deg: float | torch.Tensor = 0.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Visible panorama columns for a FoV of any width centred anywhere, wrapping across the seam.

    Args:
        width: panorama width W.
        fov_deg: visible width in degrees (0..360), a float or a (B,) tensor.
        center_deg: centre of the visible window, degrees clockwise from the centre line u = W/2,
            a float or a (B,) tensor.
        device: device of the result.

    Returns:
        Bool mask (W,) for scalar arguments, else (B, W); True = visible.

    Convention:
        Column i is visible when its centre azimuth (i + 0.5) lies in [center - fov/2, center + fov/2)
        (half-open, so the kept fraction is fov/360 up to one column); 360° keeps every column.

    Example:
        >>> fov_column_mask(8, 90.0, 180.0).int().tolist()  # centred on the seam
        [1, 0, 0, 0, 0, 0, 0, 1]
    """
    if device is None:
        device = next((t.device for t in (fov_deg, center_deg) if isinstance(t, torch.Tensor)), None)
    fov = torch.as_tensor(fov_deg, dtype=torch.float64, device=device)
    center = torch.as_tensor(center_deg, dtype=torch.float64, device=device)
    fov, center = torch.broadcast_tensors(fov, center)
    if bool(((fov < 0) | (fov > 360)).any()):
        raise ValueError(f"fov_deg must lie in [0, 360], got {fov.tolist()}")
    offsets = column_offsets_deg(width, center, device=device)
    half = (fov / 2.0).unsqueeze(-1)
    return ((offsets >= -half) & (offsets < half)) | (fov.unsqueeze(-1) >= 360.0)


def bev_fov_mask(column_mask: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Footprint of a panorama column mask on the BEV grid: a cone with its apex at the camera.

    Args:
        column_mask: (W,) or (B, W) bool (or float) visibility of the panorama columns.
        grid: (B, N, N, 2) or (N, N, 2) sampling grid from
            :func:`geodistill.geometry.bev.bev_sampling_grid` (only its horizontal coordinate is used).

    Returns:
        (B, N, N) float in [0, 1]: 1 inside the visible wedge, 0 outside, fractional at its borders
        (bilinear between neighbouring columns).

    Convention:
        The mask is pushed through the same azimuth mapping as the BEV features, circularly across the
        seam; every BEV cell whose bearing from the camera is visible gets 1.

    Example:
        >>> from geodistill.geometry.bev import bev_sampling_grid
        >>> grid = bev_sampling_grid((4, 8), 4, 1.0, 2.0)
        >>> cone = bev_fov_mask(fov_column_mask(8, 180.0, 0.0), grid)  # north half visible
        >>> (cone[0] * 100).round().int().tolist()  # percent; soft at the wedge borders
        [[100, 100, 100, 100], [91, 100, 100, 91], [9, 0, 0, 9], [0, 0, 0, 0]]
    """
    if column_mask.dim() == 1:
        column_mask = column_mask.unsqueeze(0)
    check_shape(column_mask, "B W", "column_mask")
    if grid.dim() == 3:
        grid = grid.unsqueeze(0)
    check_shape(grid, "* N M 2", "grid")
    dtype = grid.dtype if grid.is_floating_point() else torch.float32
    with torch.autocast(device_type=grid.device.type, enabled=False):
        image = column_mask.to(dtype).unsqueeze(1).unsqueeze(1)  # B,1,1,W
        batch = max(image.shape[0], grid.shape[0])
        image = image.expand(batch, -1, -1, -1)
        row_centre = torch.zeros_like(grid[..., 1])  # the mask has one row; sample its centre
        horizontal = torch.stack([grid[..., 0].to(dtype), row_centre.to(dtype)], dim=-1)
        return sample_panorama(image, horizontal.expand(batch, -1, -1, -1), wrap_seam=True)[:, 0].clamp(0, 1)


def sample_fov(
    batch: int,
    generator: torch.Generator | None,
    min_deg: float,
    max_deg: float,
    sampler: Literal["uniform", "faithful"] = "uniform",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw random visible FoV widths and centres.

    Args:
        batch: number of draws B.
        generator: the ``torch.Generator`` that drives the draw (CPU); None uses the global RNG.
        min_deg: smallest visible width in degrees.
        max_deg: largest visible width in degrees.
        sampler: ``"uniform"`` (clean): width uniform in [min, max] (both ends reachable), centre
            uniform on the circle. ``"faithful"`` (the reference): integer width in [min, max), and the
            masked wedge (360 - width) starts uniformly at a position where it does **not** cross the
            seam, so the visible window always contains the seam (south for VIGOR).

    Returns:
        (fov_deg, center_deg): two (B,) float32 tensors; centres in [-180, 180) relative to the
        panorama centre line u = W/2.

    Convention:
        Degrees clockwise from the centre line; feed the result to :func:`fov_column_mask`.

    Example:
        >>> fov, center = sample_fov(4, torch.Generator().manual_seed(0), 180.0, 240.0)
        >>> bool(((fov >= 180) & (fov <= 240)).all()), bool(((center >= -180) & (center < 180)).all())
        (True, True)
    """
    if not 0.0 <= min_deg <= max_deg <= 360.0:
        raise ValueError(f"need 0 <= min_deg <= max_deg <= 360, got min_deg={min_deg}, max_deg={max_deg}")
    if sampler == "uniform":
        steps = 2**24
        unit = torch.randint(0, steps + 1, (batch,), generator=generator, dtype=torch.float64) / steps
        fov = min_deg + (max_deg - min_deg) * unit
        center = torch.rand(batch, generator=generator, dtype=torch.float64) * 360.0 - 180.0
    elif sampler == "faithful":
        low, high = int(min_deg), int(max_deg)
        if high <= low:
            raise ValueError(f"the faithful sampler draws integers in [min_deg, max_deg): [{low}, {high}) is empty")
        fov = torch.randint(low, high, (batch,), generator=generator).to(torch.float64)
        masked = 360.0 - fov
        # The wedge [start, start + masked] is measured from the seam (azimuth -180) and never crosses it.
        start = torch.rand(batch, generator=generator, dtype=torch.float64) * (360.0 - masked)
        center = start + masked / 2.0  # visible centre is opposite the masked wedge's centre
    else:
        raise ValueError(f"sampler must be 'uniform' or 'faithful', got {sampler!r}")
    return fov.float(), wrap_deg_signed(center).float()

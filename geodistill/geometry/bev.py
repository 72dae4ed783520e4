"""Flat-ground polar mapping from an equirectangular panorama to a metric bird's-eye view (BEV).

A BEV cell whose centre lies ``e`` metres east and ``n`` metres north of a camera at height ``h``:

    d = sqrt(e² + n²)                             ground distance
    psi = atan2(e, n)                             bearing, clockwise from north
    u = W · ((psi - heading + pi) mod 2pi) / 2pi  panorama column (centre line u = W/2 faces the heading)
    v = H · (1 - atan(d / h) / pi)                panorama row: horizon at H/2, nadir at H

Grid: cell (row i, column j) of an N-cell grid has its centre at east = (j + 0.5 - N/2)·cell_m + cx,
north = (N/2 - i - 0.5)·cell_m + cy, where (cx, cy) = ``center_xy_m`` (0 by default: camera at the grid
centre). Row 0 is north, column 0 is west, like the north-up satellite tile.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch

from geodistill.geometry.grid import sample_panorama
from geodistill.geometry.shapes import check_shape

PixelConvention = Literal["center", "index"]
FloatOrTensor = float | torch.Tensor


def bev_sampling_grid(
    pano_hw: tuple[int, int],
    grid_size: int,
    cell_m: FloatOrTensor,
    camera_height_m: FloatOrTensor,
    pixel_convention: PixelConvention = "center",
    heading_deg: FloatOrTensor = 0.0,
    center_xy_m: Sequence[float] | torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Where each BEV cell samples the panorama, as a normalised ``grid_sample`` grid.

    Args:
        pano_hw: (H, W) of the panorama (image or feature map) to be sampled. With the "center"
            convention the result is the same for every resolution of the same aspect.
        grid_size: N, cells per side.
        cell_m: cell size in metres, a float or a (B,) tensor.
        camera_height_m: camera height above the ground in metres, a float or a (B,) tensor.
        pixel_convention: "center" (clean): u, v are continuous coordinates, pixel i covers [i, i+1), so
            north is the centre line u = W/2. "index" (the reference): u, v are sample indices
            (align-corners), which puts north at index W/2, i.e. half a column east of the centre line.
        heading_deg: heading of the panorama centre line, degrees clockwise from north, a float or (B,).
        center_xy_m: (2,) or (B, 2) metres east/north of the camera at which the grid is centred
            (default: the camera).
        dtype: float32 by default, or float64 when any tensor argument is float64.
        device: device of the result (default: that of the tensor arguments).

    Returns:
        (B, N, N, 2) normalised (x, y) for :func:`geodistill.geometry.grid.sample_panorama`
        (``align_corners=False``), with B = 1 when every argument is a float. Differentiable with
        respect to ``cell_m``, ``camera_height_m``, ``heading_deg`` and ``center_xy_m``.

    Convention:
        BEV row 0 is north, column 0 west, camera at the grid centre (N/2, N/2) in continuous cell
        coordinates; bearing clockwise from north; panorama u = W/2 faces the heading, 3W/4 is 90° to
        its right.

    Example:
        >>> grid = bev_sampling_grid((4, 8), 2, 1.0, 2.0)
        >>> grid.shape
        torch.Size([1, 2, 2, 2])
        >>> round(grid[0, 0, 1, 0].item(), 4)  # cell north-east of the camera: bearing 45°, x = 45/180
        0.25
    """
    tensors = [t for t in (cell_m, camera_height_m, heading_deg, center_xy_m) if isinstance(t, torch.Tensor)]
    if dtype is None:
        dtype = torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32
    if device is None:
        device = tensors[0].device if tensors else torch.device("cpu")
    if pixel_convention not in ("center", "index"):
        raise ValueError(f"pixel_convention must be 'center' or 'index', got {pixel_convention!r}")
    height, width = pano_hw
    with torch.autocast(device_type=torch.device(device).type, enabled=False):
        cell = _per_sample(cell_m, "cell_m", dtype, device)
        camera_height = _per_sample(camera_height_m, "camera_height_m", dtype, device)
        heading_rad = _per_sample(heading_deg, "heading_deg", dtype, device) * (math.pi / 180.0)
        if center_xy_m is None:
            offset = torch.zeros(1, 2, dtype=dtype, device=device)
        else:
            offset = torch.as_tensor(center_xy_m, dtype=dtype, device=device).reshape(-1, 2)
        sizes = {t.shape[0] for t in (cell, camera_height, heading_rad, offset)} - {1}
        if len(sizes) > 1:
            raise ValueError(f"per-sample arguments disagree on the batch size: {sorted(sizes)}")
        if bool((cell <= 0).any()) or bool((camera_height <= 0).any()):
            raise ValueError("cell_m and camera_height_m must be positive")

        steps = torch.arange(grid_size, dtype=dtype, device=device) + 0.5 - grid_size / 2.0  # N
        east = steps.view(1, 1, -1) * cell.view(-1, 1, 1) + offset[:, 0].view(-1, 1, 1)  # B,1,N
        north = -steps.view(1, -1, 1) * cell.view(-1, 1, 1) + offset[:, 1].view(-1, 1, 1)  # B,N,1
        east, north = torch.broadcast_tensors(east, north)  # B,N,N
        squared = east**2 + north**2
        # Keep gradients finite for a cell centred exactly on the camera (atan2 and sqrt at 0).
        at_camera = (squared == 0).to(dtype)
        distance = torch.sqrt(squared + at_camera * 1e-24)
        bearing = torch.atan2(east, north + at_camera * 1e-12)

        relative = torch.remainder(bearing - heading_rad.view(-1, 1, 1) + math.pi, 2.0 * math.pi)
        u = relative * (width / (2.0 * math.pi))
        v = height * (1.0 - torch.atan(distance / camera_height.view(-1, 1, 1)) / math.pi)
        if pixel_convention == "index":
            u, v = u + 0.5, v + 0.5
        u, v = torch.broadcast_tensors(u, v)
        return torch.stack([2.0 * u / width - 1.0, 2.0 * v / height - 1.0], dim=-1)  # B,N,N,2


def project_to_bev(
    f_pano: torch.Tensor,
    grid_size: int,
    cell_m: FloatOrTensor,
    camera_height_m: FloatOrTensor,
    wrap_seam: bool = True,
    pixel_convention: PixelConvention = "center",
    heading_deg: FloatOrTensor = 0.0,
    center_xy_m: Sequence[float] | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample a panorama (image or feature map) onto a metric BEV grid around the camera.

    Args:
        f_pano: (B, C, H, W) equirectangular panorama or panorama feature map.
        grid_size: N, cells per side.
        cell_m: cell size in metres, a float or a (B,) tensor.
        camera_height_m: camera height in metres, a float or a (B,) tensor.
        wrap_seam: sample circularly across the seam (clean); False samples zeros beyond it (reference).
        pixel_convention: "center" (clean) or "index" (reference), see :func:`bev_sampling_grid`.
        heading_deg: heading of the panorama centre line, degrees clockwise from north, float or (B,).
        center_xy_m: (2,) or (B, 2) grid centre in metres east/north of the camera (default: camera).

    Returns:
        f_bev: (B, C, N, N) in the dtype of ``f_pano`` (computed in float32, or float64 for float64
        input, with autocast disabled); differentiable.
        valid: (B, N, N) bool, True where the sample lies inside the panorama (and, without seam
        wrapping, does not blend in the zeros beyond the seam).

    Convention:
        Row 0 is north, column 0 west; cell (i, j) centre at east = (j + 0.5 - N/2)·cell_m,
        north = (N/2 - i - 0.5)·cell_m relative to the grid centre; a feature at u = W/2 lands north
        of the camera, one at 3W/4 east.

    Example:
        >>> pano = torch.zeros(1, 1, 8, 16)
        >>> pano[..., 4:, 5:11] = 1.0  # azimuths within ±67.5° of the centre line, lower half
        >>> f_bev, valid = project_to_bev(pano, 4, 1.0, 2.0)
        >>> f_bev[0, 0, :, 1:3].gt(0.5).tolist()  # north of the camera only
        [[True, True], [True, True], [False, False], [False, False]]
    """
    batch, _, height, width = check_shape(f_pano, "B C H W", "f_pano").values()
    work_dtype = torch.float64 if f_pano.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=f_pano.device.type, enabled=False):
        grid = bev_sampling_grid(
            (height, width), grid_size, cell_m, camera_height_m, pixel_convention,
            heading_deg, center_xy_m, dtype=work_dtype, device=f_pano.device,
        )
        if grid.shape[0] not in (1, batch):
            raise ValueError(f"per-sample BEV arguments have {grid.shape[0]} values, the batch has {batch}")
        grid = grid.expand(batch, -1, -1, -1)
        f_bev = sample_panorama(f_pano.to(work_dtype), grid, wrap_seam=wrap_seam)
        valid = _inside_panorama(grid.detach(), (height, width), wrap_seam)
    return f_bev.to(f_pano.dtype), valid


def topdown_view_grid(
    pano_hw: tuple[int, int],
    size: int,
    fov_deg: float = 170.0,
    pixel_convention: PixelConvention = "center",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Sampling grid of a virtual pinhole camera at the panorama centre looking straight down.

    Args:
        pano_hw: (H, W) of the panorama.
        size: output side in pixels (512 in the method).
        fov_deg: field of view of the virtual camera across the output, degrees (< 180).
        pixel_convention: "center" (output pixel centres at i + 0.5) or "index".
        dtype: dtype of the grid.
        device: device of the grid.

    Returns:
        (1, size, size, 2) normalised grid for :func:`geodistill.geometry.grid.sample_panorama`.

    Convention:
        Focal length ``f = (size/2)/tan(fov/2)`` pixels; output pixel (row a, col b) is the ray towards
        the ground point (size/2 - b, a - size/2)·(-1, 1) i.e. up = the panorama's heading direction
        (u = W/2), right = 90° clockwise of it (u = 3W/4). The radius is not metric w.r.t. the
        satellite; it equals the BEV mapping with 1-px cells and camera height f.

    Example:
        >>> topdown_view_grid((8, 16), 4).shape
        torch.Size([1, 4, 4, 2])
    """
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"fov_deg of the top-down camera must lie in (0, 180), got {fov_deg}")
    focal_px = (size / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return bev_sampling_grid(pano_hw, size, 1.0, focal_px, pixel_convention, dtype=dtype, device=device)


def topdown_view(pano: torch.Tensor, size: int, fov_deg: float = 170.0) -> torch.Tensor:
    """Top-down view image of a panorama (the orientation estimator's input).

    Args:
        pano: (B, C, H, W) equirectangular panorama.
        size: output side in pixels.
        fov_deg: field of view of the virtual downward camera, degrees (170 in the method).

    Returns:
        (B, C, size, size) image in the dtype of ``pano``; the panorama's heading direction points up.

    Convention:
        For a north-aligned panorama the output is north-up with east on the right, like the satellite
        tile (see :func:`topdown_view_grid`); the seam is wrapped.

    Example:
        >>> topdown_view(torch.rand(2, 3, 8, 16), 6).shape
        torch.Size([2, 3, 6, 6])
    """
    batch, _, height, width = check_shape(pano, "B C H W", "pano").values()
    work_dtype = torch.float64 if pano.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=pano.device.type, enabled=False):
        grid = topdown_view_grid((height, width), size, fov_deg, dtype=work_dtype, device=pano.device)
        image = sample_panorama(pano.to(work_dtype), grid.expand(batch, -1, -1, -1), wrap_seam=True)
    return image.to(pano.dtype)


def _per_sample(value: FloatOrTensor, name: str, dtype: torch.dtype, device) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=dtype, device=device)
    if tensor.dim() > 1:
        raise ValueError(f"{name} must be a float or a (B,) tensor, got shape {tuple(tensor.shape)}")
    return tensor.reshape(-1)


def _inside_panorama(grid: torch.Tensor, pano_hw: tuple[int, int], wrap_seam: bool) -> torch.Tensor:
    height, width = pano_hw
    x, y = grid[..., 0], grid[..., 1]
    valid = (y >= -1.0) & (y <= 1.0)
    if not wrap_seam:
        margin = 1.0 / width  # half a column: beyond it bilinear sampling blends in the zero padding
        valid &= (x >= -1.0 + margin) & (x <= 1.0 - margin)
    return valid

"""The one ``grid_sample`` policy of the package.

Pixel coordinates are continuous: pixel i covers [i, i+1), its centre is i + 0.5. They map to the
normalised coordinates of :func:`torch.nn.functional.grid_sample` with ``align_corners=False`` as
``x = 2u/W - 1`` and ``y = 2v/H - 1``, so the normalised value -1 is the left edge of the first pixel
and +1 the right edge of the last one. Every sampling in the package goes through this module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from geodistill.geometry.shapes import check_shape


def uv_to_normalized(uv: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Convert continuous pixel coordinates to ``grid_sample`` normalised coordinates.

    Args:
        uv: (..., 2) pixel coordinates (u, v) = (column, row).
        size_hw: (H, W) of the image the coordinates refer to.

    Returns:
        (..., 2) normalised (x, y), -1 and +1 at the outer edges of the image.

    Convention:
        Pixel i covers [i, i+1) (centre i + 0.5); ``x = 2u/W - 1``, ``y = 2v/H - 1``
        (``align_corners=False``).

    Example:
        >>> uv_to_normalized(torch.tensor([[0.0, 2.0], [4.0, 1.0]]), (2, 4)).tolist()
        [[-1.0, 1.0], [1.0, 0.0]]
    """
    check_shape(uv, "... 2", "uv")
    height, width = size_hw
    scale = uv.new_tensor([2.0 / width, 2.0 / height])
    return uv * scale - 1.0


def normalized_to_uv(xy_normalized: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`uv_to_normalized`.

    Args:
        xy_normalized: (..., 2) normalised (x, y).
        size_hw: (H, W) of the image.

    Returns:
        (..., 2) continuous pixel coordinates (u, v).

    Convention:
        ``u = (x + 1)·W/2``, ``v = (y + 1)·H/2``; pixel i covers [i, i+1).

    Example:
        >>> normalized_to_uv(torch.tensor([0.0, 0.0]), (2, 4)).tolist()
        [2.0, 1.0]
    """
    check_shape(xy_normalized, "... 2", "xy_normalized")
    height, width = size_hw
    scale = xy_normalized.new_tensor([width / 2.0, height / 2.0])
    return (xy_normalized + 1.0) * scale


def sample_image(image: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample an image at continuous pixel coordinates, zeros outside.

    Args:
        image: (B, C, H, W) image or feature map.
        uv: (B, ..., 2) pixel coordinates (u, v) per batch item, any number of point axes.

    Returns:
        (B, C, ...) sampled values, in the dtype of ``image``.

    Convention:
        Pixel i covers [i, i+1); sampling at (i + 0.5, j + 0.5) returns pixel (row j, column i) exactly.

    Example:
        >>> img = torch.arange(4.0).view(1, 1, 2, 2)
        >>> sample_image(img, torch.tensor([[[1.5, 0.5], [1.0, 1.0]]])).tolist()
        [[[1.0, 1.5]]]
    """
    batch, channels, height, width = check_shape(image, "B C H W", "image").values()
    if uv.shape[0] != batch or uv.shape[-1] != 2:
        raise ValueError(f"uv must have shape ({batch}, ..., 2) to match the image, got {tuple(uv.shape)}")
    points_shape = uv.shape[1:-1]
    grid = uv_to_normalized(uv.to(image.dtype), (height, width)).reshape(batch, 1, -1, 2)
    sampled = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return sampled.reshape(batch, channels, *points_shape)


def sample_panorama(pano: torch.Tensor, grid: torch.Tensor, wrap_seam: bool = True) -> torch.Tensor:
    """Bilinearly sample an equirectangular panorama on a normalised grid, optionally across the seam.

    Args:
        pano: (B, C, H, W) panorama image or feature map.
        grid: (B, Ho, Wo, 2) or (Ho, Wo, 2) normalised (x, y) coordinates (see :func:`uv_to_normalized`),
            e.g. from :func:`geodistill.geometry.bev.bev_sampling_grid`.
        wrap_seam: True: the panorama is circular horizontally (column W-1 neighbours column 0, via one
            column of circular padding) and replicated at the top and bottom rows, so no sample blends
            in black. False: zeros outside the image, the reference implementation's behaviour.

    Returns:
        (B, C, Ho, Wo) sampled values in the dtype of ``pano``.

    Convention:
        ``align_corners=False``: x = -1 and x = +1 are the left and right edges of the image (the seam,
        azimuth -180°/+180° relative to the centre line u = W/2).

    Example:
        >>> pano = torch.tensor([[[[1.0, 0.0, 0.0, 3.0]]]])
        >>> grid = torch.tensor([[[[1.0, 0.0]]]])  # right edge: half column 3, half column 0
        >>> sample_panorama(pano, grid).item()
        2.0
    """
    batch, _, height, width = check_shape(pano, "B C H W", "pano").values()
    if grid.dim() == 3:
        grid = grid.unsqueeze(0)
    check_shape(grid, "* Ho Wo 2", "grid")
    if grid.shape[0] not in (1, batch):
        raise ValueError(f"grid has batch size {grid.shape[0]}, the panorama {batch}")
    grid = grid.to(pano.dtype).expand(batch, -1, -1, -1)
    if not wrap_seam:
        return F.grid_sample(pano, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    padded = torch.cat([pano[..., -1:], pano, pano[..., :1]], dim=-1)  # B,C,H,W+2
    scale_x = width / (width + 2.0)
    grid_padded = torch.stack([grid[..., 0] * scale_x, grid[..., 1]], dim=-1)
    return F.grid_sample(padded, grid_padded, mode="bilinear", padding_mode="border", align_corners=False)

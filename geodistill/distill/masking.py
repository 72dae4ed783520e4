"""What the student does not see: FoV column masks (the method) and template-cell masks (ablations).

- ``fov`` (default): a contiguous window of visible panorama columns; the hidden columns are zeroed
  in the image and, through the BEV projection, hidden in the template and the correlation weight.
- ``random_patches``: the template is split into ``patch_grid x patch_grid`` patches and a share
  ``mask_ratio`` of them is hidden (the same physical patches at every level).
- ``max_activation``: the ``mask_ratio`` share of template cells with the largest feature energy is
  hidden, per level.

All randomness comes from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from geodistill.config import FovConfig
from geodistill.geometry.fov import fov_column_mask, sample_fov


def sample_fov_masks(
    batch_size: int, width: int, fov: FovConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw one visible window per panorama.

    Args:
        batch_size: number of panoramas B.
        width: panorama width W in pixels.
        fov: smallest/largest visible FoV and the window-centre sampler.
        generator: source of randomness (seeded from the config).

    Returns:
        column_mask (B, W) bool (True = visible), fov_deg (B,), center_deg (B,).
    """
    if not 0.0 < fov.min_deg <= fov.max_deg <= 360.0:
        raise ValueError(f"FoV range [{fov.min_deg}, {fov.max_deg}] deg must satisfy 0 < min <= max <= 360")
    fov_deg, center_deg = sample_fov(batch_size, generator, fov.min_deg, fov.max_deg, fov.sampler)
    column_mask = fov_column_mask(width, fov_deg, center_deg)
    return column_mask, torch.as_tensor(fov_deg), torch.as_tensor(center_deg)


def mask_panorama_columns(pano: torch.Tensor, column_mask: torch.Tensor) -> torch.Tensor:
    """Zero the hidden columns (black, before normalisation).

    Args:
        pano: (B, C, H, W) panoramas in [0, 1].
        column_mask: (B, W) or (W,) bool, True = visible.

    Returns:
        (B, C, H, W) masked copy.
    """
    if column_mask.shape[-1] != pano.shape[-1]:
        raise ValueError(f"column mask of width {column_mask.shape[-1]} for panoramas of width {pano.shape[-1]}")
    visible = column_mask.to(device=pano.device, dtype=pano.dtype)
    return pano * visible.reshape(-1, 1, 1, pano.shape[-1])


def random_patch_grid(
    batch_size: int, patch_grid: int, mask_ratio: float, generator: torch.Generator
) -> torch.Tensor:
    """Visible patches of a ``patch_grid x patch_grid`` split of the template.

    Exactly ``round(mask_ratio * patch_grid**2)`` patches are hidden per sample.

    Returns:
        (B, G, G) bool, True = visible.
    """
    if patch_grid < 1:
        raise ValueError(f"patch_grid must be at least 1, got {patch_grid}")
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    count = patch_grid * patch_grid
    hidden = int(round(mask_ratio * count))
    order = torch.argsort(torch.rand(batch_size, count, generator=generator), dim=1)
    visible = torch.ones(batch_size, count, dtype=torch.bool)
    visible.scatter_(1, order[:, :hidden], False)
    return visible.reshape(batch_size, patch_grid, patch_grid)


def patch_grid_to_cells(visible_patches: torch.Tensor, size: int) -> torch.Tensor:
    """Spread a (B, G, G) patch mask over a (B, N, N) template (nearest), as a float weight in {0, 1}."""
    weight = F.interpolate(visible_patches[:, None].float(), size=(size, size), mode="nearest")
    return weight[:, 0]


def max_activation_mask(f_template: torch.Tensor, mask_ratio: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Hide the template cells with the largest feature energy.

    Args:
        f_template: (B, C, N, N) template features.
        mask_ratio: share of (valid) cells to hide, in [0, 1).
        valid: optional (B, N, N) weight; cells with weight 0 are never counted or hidden.

    Returns:
        (B, N, N) float weight, 0 on the hidden cells, 1 elsewhere (``valid`` applied).
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    batch, _, height, width = f_template.shape
    energy = f_template.detach().float().square().sum(dim=1).reshape(batch, -1)  # B,N*N
    weight = torch.ones(batch, height * width, device=f_template.device)
    if valid is not None:
        valid_flat = valid.reshape(batch, -1).to(weight)
        weight = weight * valid_flat
        energy = energy.masked_fill(valid_flat <= 0, -math.inf)
    for index in range(batch):
        usable = int((energy[index] > -math.inf).sum())
        hidden = int(round(mask_ratio * usable))
        if hidden:
            top = torch.topk(energy[index], hidden).indices
            weight[index, top] = 0.0
    return weight.reshape(batch, height, width)

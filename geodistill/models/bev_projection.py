"""Ground features -> BEV template at the satellite feature scale (method.md §3.2-3.3).

The template is built directly at c = int(template_crop · A) cells centred on the camera (no full-tile projection
and crop), with a cell of

* ``matched`` (clean): the satellite feature cell, ``cell_m = meters_per_pixel · P / A`` where P is the
  input side the A-cell satellite feature map covers (the padded side, 518 for a 512 tile with a patch-14
  backbone). The template and the satellite features then share one metric grid.
* ``faithful`` (reference): ``2^(3−l)`` pixels of the tile at level l, which is the satellite cell only for
  stride-8/4/2 CNN levels; with DINOv2 at 512 px the template is 8/7 too coarse, as in the published numbers.

The projection itself is :func:`geodistill.geometry.bev.project_to_bev`.
"""

from __future__ import annotations

import torch

from geodistill.geometry.bev import bev_sampling_grid, project_to_bev
from geodistill.geometry.fov import bev_fov_mask


def template_cells(feature_side: int, template_crop: float) -> int:
    """c = int(template_crop · A), at least 1 and at most A."""
    return max(1, min(feature_side, int(template_crop * feature_side)))


def bev_cell_m(meters_per_pixel: torch.Tensor, covered_px: float, feature_side: int, level: int,
               grid: str = "matched") -> torch.Tensor:
    """Metres per BEV cell (B,) at one level.

    Args:
        meters_per_pixel: (B,) metres per pixel of the tile as fed.
        covered_px: input pixels spanned by the satellite feature map (P, the padded side).
        feature_side: A, satellite feature cells per side at this level.
        level: decoder level (0 = coarsest); used by ``faithful`` only.
        grid: ``matched`` or ``faithful``.
    """
    if grid == "matched":
        return meters_per_pixel * (covered_px / feature_side)
    if grid == "faithful":
        return meters_per_pixel * float(2 ** (3 - level))
    raise ValueError(f"bev_grid must be 'matched' or 'faithful', got {grid!r}")


def project_template(f_pano: torch.Tensor, cells: int, cell_m: torch.Tensor, camera_height_m: torch.Tensor,
                     wrap_seam: bool = True, pixel_convention: str = "center",
                     heading_deg: torch.Tensor | float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Project (B,C,Hf,Wf) panorama features to a north-up (B,C,c,c) template centred on the camera, float32.

    ``heading_deg`` (float or (B,)) is the heading of each panorama's centre line, degrees clockwise from north.

    Returns:
        f_bev (B,C,c,c) and valid (B,c,c) bool.
    """
    features = f_pano if f_pano.dtype == torch.float64 else f_pano.float()
    return project_to_bev(features, cells, cell_m, camera_height_m, wrap_seam=wrap_seam,
                          pixel_convention=pixel_convention, heading_deg=heading_deg)


def project_fov_cone(fov_mask: torch.Tensor, cells: int, cell_m: torch.Tensor, camera_height_m: torch.Tensor,
                     pixel_convention: str = "center", heading_deg: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Push a panorama column mask (B,Wp) through the same mapping: (B,c,c) float cone in [0, 1]."""
    width = fov_mask.shape[-1]
    grid = bev_sampling_grid((width // 2, width), cells, cell_m, camera_height_m, pixel_convention,
                             heading_deg=heading_deg, device=fov_mask.device)
    return bev_fov_mask(fov_mask, grid)

"""The panorama projected to a bird's-eye view and laid on the satellite tile at the predicted position.

Convention: the BEV grid is north-up with the camera at its centre (``geodistill.geometry.bev``); the
panorama's heading (degrees clockwise from north of its centre line) turns it into that frame, so it
lies on the north-up tile without further rotation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from geodistill.geometry.bev import project_to_bev
from geodistill.viz.heatmap import draw_localization
from geodistill.viz.images import resize_rgb, to_rgb_uint8

BEV_GRID_SIZE = 192  # cells along each side of the drawn BEV


def _as_chw(pano) -> torch.Tensor:
    if isinstance(pano, torch.Tensor):
        tensor = pano.detach().cpu().float()
        return tensor if tensor.shape[0] == 3 else tensor.permute(2, 0, 1)
    array = to_rgb_uint8(pano).astype(np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)


def project_panorama(pano, fov_mask=None, extent_m: float = 40.0, camera_height_m: float = 2.0,
                     heading_deg: float = 0.0, grid_size: int = BEV_GRID_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Flat-ground bird's-eye view of a panorama's colours, with the visible part.

    Args:
        pano: (3, Hp, Wp) tensor in [0, 1] or (Hp, Wp, 3) image.
        fov_mask: (Wp,) bool visible columns, or None for the full panorama.
        extent_m: side of the square ground area drawn, metres.
        camera_height_m: camera height above the ground, metres.
        heading_deg: heading of the panorama centre line, degrees clockwise from north.
        grid_size: cells per side N.

    Returns:
        ``(bev, alpha)``: north-up (N, N, 3) uint8 colours and (N, N) float32 in [0, 1], 1 where the
        ground is both inside the panorama's reach and in its field of view.
    """
    pano_chw = _as_chw(pano)                                                      # 3,Hp,Wp
    width = pano_chw.shape[-1]
    if fov_mask is None:
        visible = torch.ones(width)
    else:
        visible = torch.as_tensor(np.asarray(fov_mask.cpu() if hasattr(fov_mask, "cpu") else fov_mask),
                                  dtype=torch.float32)
        if visible.shape != (width,):
            raise ValueError(f"fov_mask has shape {tuple(visible.shape)}, expected ({width},)")
    visible_plane = visible.view(1, 1, width).expand(1, pano_chw.shape[1], width)  # 1,Hp,Wp
    stacked = torch.cat([pano_chw * visible_plane, visible_plane], dim=0)[None]    # 1,4,Hp,Wp
    f_bev, valid = project_to_bev(stacked, grid_size, extent_m / grid_size, camera_height_m, heading_deg=heading_deg)
    colours = f_bev[0, :3].clamp(0, 1)                                             # 3,N,N
    alpha = (f_bev[0, 3].clamp(0, 1) * valid[0].float()).numpy().astype(np.float32)
    return to_rgb_uint8(colours), alpha


def bev_on_tile(sat, pano, uv_pred, meters_per_pixel: float, heading_deg: float | None = 0.0, fov_mask=None,
                camera_height_m: float = 2.0, extent_m: float | None = None, opacity: float = 0.85,
                uv_gt=None, size: int | None = None) -> np.ndarray:
    """The tile with the panorama's bird's-eye view centred on the predicted position.

    Args:
        sat: (3, S, S) tensor or (S, S, 3) image, north-up.
        pano: (3, Hp, Wp) tensor or (Hp, Wp, 3) image.
        uv_pred: (2,) predicted camera pixel on ``sat``.
        meters_per_pixel: metres per pixel of ``sat``.
        heading_deg: heading of the panorama centre line (degrees clockwise from north); None means 0.
        fov_mask: (Wp,) bool visible columns, or None.
        camera_height_m: camera height above the ground.
        extent_m: side of the ground area drawn (default: half the tile's width).
        opacity: opacity of the BEV where it is visible.
        uv_gt: (2,) true pixel, drawn as a dot when given.
        size: output side in pixels (default: the tile's, at least 512).

    Returns:
        (size, size, 3) uint8 image.
    """
    tile = to_rgb_uint8(sat)
    tile_side = tile.shape[0]
    side = size or max(tile_side, 512)
    scale = side / tile_side
    canvas = resize_rgb(tile, side, side)
    extent_m = extent_m or 0.5 * tile_side * meters_per_pixel
    heading = 0.0 if heading_deg is None or not math.isfinite(heading_deg) else float(heading_deg)
    bev, alpha = project_panorama(pano, fov_mask, extent_m, camera_height_m, heading)
    bev_side = max(2, round(extent_m / meters_per_pixel * scale))
    rgba = np.concatenate([bev, (alpha * 255 * opacity + 0.5).astype(np.uint8)[..., None]], axis=-1)
    layer = Image.fromarray(rgba).resize((bev_side, bev_side), Image.BILINEAR)
    u, v = (float(c) * scale for c in uv_pred)
    composed = Image.fromarray(canvas).convert("RGBA")
    composed.alpha_composite(_placed(layer, composed.size, (u, v)))
    image = np.asarray(composed.convert("RGB"))
    return draw_localization(image, uv_pred=uv_pred, uv_gt=uv_gt, heading_deg=heading, uv_scale=scale)


def _placed(layer: Image.Image, canvas_size: tuple[int, int], centre: tuple[float, float]) -> Image.Image:
    """``layer`` on a transparent canvas of ``canvas_size`` with its centre at ``centre`` (clipped at edges)."""
    placed = Image.new("RGBA", canvas_size, (0, 0, 0, 0))
    left = round(centre[0] - layer.width / 2)
    top = round(centre[1] - layer.height / 2)
    placed.paste(layer, (left, top), layer)
    return placed

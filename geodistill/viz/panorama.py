"""The panorama with its field-of-view mask drawn, and azimuth ticks.

Convention: column u of a W-wide equirectangular panorama looks at azimuth ``360·u/W − 180`` degrees
relative to the heading, so the heading is the centre line u = W/2 (north for VIGOR panoramas).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from geodistill.viz.images import resize_rgb, to_rgb_uint8

MASK_EDGE_COLOUR = (255, 214, 10)
HIDDEN_DIM = 0.3  # brightness kept in the hidden part of the panorama


def draw_fov(pano, fov_mask=None, show_mask: bool = True, width: int | None = None) -> np.ndarray:
    """The panorama with the columns outside the FoV dimmed and the window's edges drawn.

    Args:
        pano: (3, Hp, Wp) tensor or (Hp, Wp, 3) array.
        fov_mask: (Wp,) bool, True = visible; None or all True = full panorama.
        show_mask: draw the mask (False returns the plain panorama with ticks).
        width: output width in pixels (height follows; default: the panorama's).

    Returns:
        (H, W, 3) uint8 image.
    """
    image = to_rgb_uint8(pano)
    height_px, width_px = image.shape[:2]
    out_width = width or width_px
    out_height = round(height_px * out_width / width_px)
    if show_mask and fov_mask is not None:
        mask = np.asarray(fov_mask.detach().cpu() if hasattr(fov_mask, "detach") else fov_mask, dtype=bool)
        if mask.shape != (width_px,):
            raise ValueError(f"fov_mask has shape {mask.shape}, expected ({width_px},) for this panorama")
        dim = np.where(mask, 1.0, HIDDEN_DIM).astype(np.float32)
        image = (image.astype(np.float32) * dim[None, :, None] + 0.5).astype(np.uint8)
        image = resize_rgb(image, out_width, out_height)
        return _draw_ticks(_draw_edges(image, mask))
    return _draw_ticks(resize_rgb(image, out_width, out_height))


def _draw_edges(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if mask.all() or not mask.any():
        return image
    scale = image.shape[1] / mask.shape[0]
    # An edge is where visibility changes between neighbouring columns; np.roll makes the seam wrap.
    changes = np.nonzero(mask != np.roll(mask, 1))[0]
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    line_width = max(2, image.shape[1] // 300)
    for column in changes:
        u = column * scale
        draw.line([(u, 0), (u, image.shape[0])], fill=MASK_EDGE_COLOUR, width=line_width)
    return np.asarray(canvas)


def _draw_ticks(image: np.ndarray) -> np.ndarray:
    """Small azimuth ticks along the bottom edge: 0° (the heading) and every 90°."""
    canvas = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(canvas)
    height_px, width_px = image.shape[:2]
    tick = max(6, height_px // 20)
    for azimuth_deg in (-90, 0, 90):
        u = (azimuth_deg + 180) / 360 * width_px
        draw.line([(u, height_px - tick), (u, height_px)], fill=(255, 255, 255), width=2)
        draw.text((u + 3, height_px - tick - 10), f"{azimuth_deg:+d}°" if azimuth_deg else "0°",
                  fill=(255, 255, 255))
    return np.asarray(canvas)

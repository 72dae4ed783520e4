"""Visual ground-truth checks of a labelled pair: the GT on the tile, and the flat-world BEV against the aerial.

Two drawings, for a north-up satellite tile, an equirectangular panorama whose centre line faces
``heading_deg`` (degrees clockwise from north; 0 for VIGOR's north-aligned panoramas) and the camera
pixel ``uv`` = (u, v) on the tile (pixel i covers [i, i+1)):

- :func:`gt_tile_view`: the tile with the camera dot and the heading arrow, beside the panorama with its
  centre column (the heading) and the compass bearings N/E/S/W marked. The arrow, the panorama centre and
  the aerial layout must agree.
- :func:`bev_check_view`: the aerial crop centred on the camera (greyscale), the panorama projected onto a
  flat ground plane at the same position and scale (:func:`geodistill.viz.bev.project_panorama`), and a
  green-magenta overlay of the two. Road edges, lane lines and crosswalks line up when the label is right;
  buildings smear radially because the flat-ground model ignores height.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from geodistill.viz.bev import project_panorama
from geodistill.viz.heatmap import HEADING_COLOUR, _draw_arrow, draw_localization
from geodistill.viz.images import resize_rgb, to_rgb_uint8
from geodistill.viz.panorama import draw_fov

BEV_CELLS = 256  # cells per side of the aerial crop and the BEV
PANEL_SIDE = 384  # drawn side of each BEV-check panel, pixels
CAPTION_HEIGHT = 28  # pixels of the caption strip above each drawing
GAP = 8  # pixels between panels
_COMPASS = (("N", 0.0), ("E", 90.0), ("S", 180.0), ("W", 270.0))


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _with_caption(image: np.ndarray, caption: str) -> np.ndarray:
    """``image`` below a white caption strip, (H + CAPTION_HEIGHT, W, 3) uint8."""
    canvas = Image.new("RGB", (image.shape[1], image.shape[0] + CAPTION_HEIGHT), (255, 255, 255))
    canvas.paste(Image.fromarray(image), (0, CAPTION_HEIGHT))
    ImageDraw.Draw(canvas).text((6, 5), caption, fill=(20, 20, 20), font=_font(16))
    return np.asarray(canvas)


def _side_by_side(panels: list[np.ndarray]) -> np.ndarray:
    """Panels of equal height in a row with white gaps, (H, ΣW + gaps, 3) uint8."""
    height = max(panel.shape[0] for panel in panels)
    width = sum(panel.shape[1] for panel in panels) + GAP * (len(panels) - 1)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    left = 0
    for panel in panels:
        canvas[: panel.shape[0], left: left + panel.shape[1]] = panel
        left += panel.shape[1] + GAP
    return canvas


def _mark_panorama(pano: np.ndarray, heading_deg: float) -> np.ndarray:
    """The panorama with its centre column (the heading) in the arrow's colour and N/E/S/W bearings on top."""
    canvas = Image.fromarray(draw_fov(pano))
    draw = ImageDraw.Draw(canvas)
    height_px, width_px = pano.shape[:2]
    line_width = max(2, width_px // 400)
    draw.line([(width_px / 2, 0), (width_px / 2, height_px)], fill=HEADING_COLOUR, width=line_width)
    font = _font(max(14, height_px // 24))
    for letter, bearing_deg in _COMPASS:
        u = ((bearing_deg - heading_deg + 180.0) % 360.0) / 360.0 * width_px
        draw.line([(u, 0), (u, height_px // 16)], fill=(255, 255, 255), width=line_width)
        draw.text((u + 4, 2), letter, fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(canvas)


def gt_tile_view(sat, pano, uv, heading_deg: float = 0.0, caption: str = "") -> np.ndarray:
    """The tile with the GT camera dot and heading arrow, beside the panorama with its centre column marked.

    Args:
        sat: (3, S, S) tensor or (S, S, 3) image, north-up.
        pano: (3, Hp, Wp) tensor or (Hp, Wp, 3) image; its centre line faces ``heading_deg``.
        uv: (2,) camera pixel (u, v) on ``sat``.
        heading_deg: heading of the panorama centre line, degrees clockwise from north.
        caption: text drawn above the drawing.

    Returns:
        (S + CAPTION_HEIGHT, S + GAP + 2·S, 3) uint8 image (the panorama is drawn S high).
    """
    tile = to_rgb_uint8(sat)
    side = tile.shape[0]
    u, v = (float(c) for c in uv)
    marked = draw_localization(tile, uv_gt=(u, v))
    canvas = Image.fromarray(marked)
    draw = ImageDraw.Draw(canvas)
    radius = max(4.0, side / 70)
    _draw_arrow(draw, (u, v), heading_deg, length=radius * 6, width=max(2, round(radius / 3)))
    draw.ellipse([u - 2, v - 2, u + 2, v + 2], fill=(0, 0, 0))
    panorama = _mark_panorama(resize_rgb(to_rgb_uint8(pano), 2 * side, side), heading_deg)
    return _with_caption(_side_by_side([np.asarray(canvas), panorama]), caption)


def aerial_crop(sat, uv, meters_per_pixel: float, extent_m: float,
                cells: int = BEV_CELLS) -> tuple[np.ndarray, np.ndarray]:
    """The tile resampled on the BEV grid centred at ``uv``: same cells, orientation and scale as the BEV.

    Args:
        sat: (3, S, S) tensor or (S, S, 3) image, north-up.
        uv: (2,) centre pixel (u, v) on ``sat``.
        meters_per_pixel: metres per pixel of ``sat``.
        extent_m: side of the square ground area, metres.
        cells: N, cells per side.

    Returns:
        ``(grey, valid)``: (N, N) float32 grey levels in [0, 1] (row 0 north, column 0 west) and (N, N) bool,
        True where the cell lies on the tile.
    """
    tile = torch.from_numpy(to_rgb_uint8(sat)).float().mean(-1) / 255.0               # S,S
    side = tile.shape[0]
    cell_px = extent_m / cells / meters_per_pixel
    steps = (torch.arange(cells, dtype=torch.float32) + 0.5 - cells / 2) * cell_px    # N
    cols = float(uv[0]) + steps.view(1, -1).expand(cells, cells)                      # N,N
    rows = float(uv[1]) + steps.view(-1, 1).expand(cells, cells)                      # N,N
    grid = torch.stack([2 * cols / side - 1, 2 * rows / side - 1], dim=-1)[None]     # 1,N,N,2
    grey = F.grid_sample(tile[None, None], grid, mode="bilinear", align_corners=False)[0, 0]
    valid = (cols >= 0) & (cols <= side) & (rows >= 0) & (rows <= side)
    return grey.numpy().astype(np.float32), valid.numpy()


def panorama_bev_grey(pano, extent_m: float, camera_height_m: float, heading_deg: float = 0.0,
                      cells: int = BEV_CELLS) -> tuple[np.ndarray, np.ndarray]:
    """The panorama on a flat ground plane around the camera, greyscale.

    Returns:
        ``(grey, valid)``: (N, N) float32 in [0, 1], north-up with the camera at the centre, and (N, N) bool.
    """
    colours, alpha = project_panorama(pano, None, extent_m, camera_height_m, heading_deg, grid_size=cells)
    return colours.astype(np.float32).mean(-1) / 255.0, alpha > 0.5


def _stretched(grey: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Grey levels contrast-stretched to the 1st-99th percentile of the valid cells, as uint8."""
    values = grey[valid] if valid.any() else grey.reshape(-1)
    low, high = np.percentile(values, [1, 99])
    scaled = (grey - low) / max(high - low, 1e-6)
    return (np.clip(scaled, 0, 1) * 255 * valid + 0.5).astype(np.uint8)


def _decorate(panel: np.ndarray, extent_m: float) -> np.ndarray:
    """A panel with a camera cross at the centre, an 'N' at the top and a 10 m (or 5 m) scale bar."""
    canvas = Image.fromarray(np.ascontiguousarray(panel))
    draw = ImageDraw.Draw(canvas)
    side = panel.shape[0]
    centre, arm = side / 2, side / 40
    draw.line([(centre - arm, centre), (centre + arm, centre)], fill=(255, 59, 48), width=2)
    draw.line([(centre, centre - arm), (centre, centre + arm)], fill=(255, 59, 48), width=2)
    font = _font(14)
    outline = {"fill": (255, 255, 255), "font": font, "stroke_width": 2, "stroke_fill": (0, 0, 0)}
    draw.text((centre - 4, 2), "N", **outline)
    bar_m = 10.0 if extent_m >= 25 else 5.0
    bar_px = bar_m / extent_m * side
    y = side - 12
    draw.line([(10, y), (10 + bar_px, y)], fill=(255, 255, 255), width=4)
    draw.text((10, y - 20), f"{bar_m:.0f} m", **outline)
    return np.asarray(canvas)


def bev_check_view(sat, pano, uv, meters_per_pixel: float, camera_height_m: float, heading_deg: float = 0.0,
                   extent_m: float = 40.0, caption: str = "", cells: int = BEV_CELLS) -> np.ndarray:
    """Aerial crop at the camera, the panorama's flat-world BEV at the same place and scale, and their overlay.

    Args:
        sat: (3, S, S) tensor or (S, S, 3) image, north-up.
        pano: (3, Hp, Wp) tensor or (Hp, Wp, 3) image; its centre line faces ``heading_deg``.
        uv: (2,) camera pixel (u, v) on ``sat``.
        meters_per_pixel: metres per pixel of ``sat``.
        camera_height_m: camera height above the ground, metres.
        heading_deg: heading of the panorama centre line, degrees clockwise from north.
        extent_m: side of the square ground area shown, metres.
        caption: text drawn above the drawing.
        cells: N, cells per side of the crop and the BEV.

    Returns:
        (PANEL_SIDE + CAPTION_HEIGHT, 3·PANEL_SIDE + 2·GAP, 3) uint8 image: aerial (grey), BEV (grey) and the
        overlay (aerial magenta, BEV green; aligned structure turns grey-white).
    """
    aerial, aerial_valid = aerial_crop(sat, uv, meters_per_pixel, extent_m, cells)
    bev, bev_valid = panorama_bev_grey(pano, extent_m, camera_height_m, heading_deg, cells)
    aerial_u8, bev_u8 = _stretched(aerial, aerial_valid), _stretched(bev, bev_valid)
    overlay = np.stack([aerial_u8, bev_u8, aerial_u8], axis=-1)
    panels = [np.stack([aerial_u8] * 3, axis=-1), np.stack([bev_u8] * 3, axis=-1), overlay]
    titles = ("aerial at GT", f"panorama BEV (flat ground, h = {camera_height_m:.2f} m)",
              "overlay: aerial magenta, BEV green")
    drawn = [_with_caption(_decorate(resize_rgb(panel, PANEL_SIDE, PANEL_SIDE), extent_m), title)
             for panel, title in zip(panels, titles)]
    row = _side_by_side(drawn)
    return _with_caption(row, caption) if caption else row


"""Heatmaps on the satellite tile: probability overlays, teacher-student differences, and markers.

Convention: the tile is north-up, pixel (u, v) = (column, row) with pixel i covering [i, i+1); the
heading θ (degrees clockwise from north) points along (sin θ, −cos θ) in (u, v).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from geodistill.viz.images import blend, colormap_rgb, resize_map, resize_rgb, to_rgb_uint8

PREDICTION_COLOUR = (255, 59, 48)
TEACHER_COLOUR = (10, 132, 255)     # the teacher's prediction where both are shown
GROUND_TRUTH_COLOUR = (52, 199, 89)
HEADING_COLOUR = (255, 214, 10)
FIELD_COLOUR = (100, 210, 255)      # a CCVPE heading field


def probability_alpha(prob: np.ndarray, opacity: float, gamma: float = 0.5) -> np.ndarray:
    """Per-pixel opacity that grows with probability: ``opacity · (p / max p)^gamma``, (H, W) in [0, 1].

    The square root (gamma 0.5) keeps the tails of a peaked distribution visible.
    """
    prob = np.clip(np.nan_to_num(np.asarray(prob, dtype=np.float32)), 0.0, None)
    peak = float(prob.max())
    if peak <= 0:
        return np.zeros_like(prob)
    return float(np.clip(opacity, 0.0, 1.0)) * (prob / peak) ** gamma


def heatmap_overlay(sat, prob: np.ndarray, opacity: float = 0.6, cmap: str = "magma",
                    size: int | None = None) -> np.ndarray:
    """The satellite tile with a probability map painted over it.

    Args:
        sat: satellite tile, (3, S, S) tensor or (S, S, 3) array.
        prob: (H, W) probability map over the tile (any resolution; resized to the tile).
        opacity: opacity at the peak, in [0, 1]; lower probabilities are more transparent.
        cmap: matplotlib colormap name.
        size: output side in pixels (default: the tile's).

    Returns:
        (size, size, 3) uint8 image.
    """
    base = to_rgb_uint8(sat)
    side = size or base.shape[0]
    base = resize_rgb(base, side, side)
    prob = resize_map(prob, side, side)
    return blend(base, colormap_rgb(prob, cmap, vmin=0.0), probability_alpha(prob, opacity))


def difference_overlay(sat, prob_teacher: np.ndarray, prob_student: np.ndarray, opacity: float = 0.6,
                       size: int | None = None) -> np.ndarray:
    """Where the student puts more (red) or less (blue) probability than the teacher.

    Both maps are normalised to sum to one before the difference; the colour scale is symmetric about
    zero and the opacity grows with the size of the difference.

    Returns:
        (size, size, 3) uint8 image.
    """
    base = to_rgb_uint8(sat)
    side = size or base.shape[0]
    base = resize_rgb(base, side, side)
    teacher = _normalised(resize_map(prob_teacher, side, side))
    student = _normalised(resize_map(prob_student, side, side))
    difference = student - teacher
    scale = float(np.abs(difference).max())
    if scale <= 0:
        return base
    colours = colormap_rgb(difference, "RdBu_r", vmin=-scale, vmax=scale)
    alpha = float(np.clip(opacity, 0, 1)) * (np.abs(difference) / scale) ** 0.5
    return blend(base, colours, alpha)


def with_colour_bar(image: np.ndarray, cmap: str, top_label: str, bottom_label: str, title: str) -> np.ndarray:
    """``image`` with a vertical colour bar on a white strip to its right: the colormap from bottom (its low end)
    to top, labelled at both ends, with a title above, (H, W + strip, 3) uint8."""
    from PIL import ImageFont

    height = image.shape[0]
    strip = max(90, height // 5)
    bar_width, margin = max(12, strip // 6), max(20, height // 16)
    canvas = Image.new("RGB", (image.shape[1] + strip, height), (255, 255, 255))
    canvas.paste(Image.fromarray(np.ascontiguousarray(image)), (0, 0))
    ramp = np.linspace(1.0, 0.0, height - 2 * margin, dtype=np.float32)[:, None].repeat(bar_width, axis=1)
    left = image.shape[1] + 6
    canvas.paste(Image.fromarray(colormap_rgb(ramp, cmap, vmin=0.0, vmax=1.0)), (left, margin))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(10, height // 40))
    draw.rectangle([left, margin, left + bar_width, height - margin], outline=(80, 80, 80))
    draw.text((left, 2), title, fill=(0, 0, 0), font=font)
    for text, y in ((top_label, margin), (bottom_label, height - margin)):
        draw.text((left + bar_width + 4, y), text, fill=(0, 0, 0), font=font, anchor="lm")
    return np.asarray(canvas)


def _normalised(prob: np.ndarray) -> np.ndarray:
    prob = np.clip(np.nan_to_num(prob), 0.0, None)
    total = float(prob.sum())
    return prob / total if total > 0 else prob


def draw_localization(image: np.ndarray, uv_pred=None, uv_gt=None, heading_deg: float | None = None,
                      uv_scale: float = 1.0) -> np.ndarray:
    """Mark the prediction (red ring), the ground truth (green dot) and the heading (yellow arrow).

    Args:
        image: (H, W, 3) uint8 drawing to mark (not modified).
        uv_pred: (2,) predicted pixel (u, v) on the tile, or None.
        uv_gt: (2,) true pixel (u, v), or None.
        heading_deg: heading at the prediction, degrees clockwise from north, or None.
        uv_scale: factor from tile pixels to ``image`` pixels (image side / tile side).

    Returns:
        (H, W, 3) uint8 image.
    """
    canvas = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(canvas)
    radius = max(4.0, image.shape[0] / 70)
    width = max(2, round(radius / 3))
    if uv_gt is not None and np.all(np.isfinite(np.asarray(uv_gt, dtype=np.float64))):
        u, v = (float(c) * uv_scale for c in uv_gt)
        draw.ellipse([u - radius, v - radius, u + radius, v + radius], fill=GROUND_TRUTH_COLOUR,
                     outline=(255, 255, 255), width=max(1, width // 2))
    if uv_pred is not None:
        u, v = (float(c) * uv_scale for c in uv_pred)
        if heading_deg is not None and math.isfinite(heading_deg):
            _draw_arrow(draw, (u, v), heading_deg, length=radius * 6, width=width)
        draw.ellipse([u - radius * 1.4, v - radius * 1.4, u + radius * 1.4, v + radius * 1.4],
                     outline=PREDICTION_COLOUR, width=width + 1)
        draw.ellipse([u - width, v - width, u + width, v + width], fill=PREDICTION_COLOUR)
    return np.asarray(canvas)


def draw_orientation_field(image: np.ndarray, field: np.ndarray, uv_scale: float = 1.0,
                           spacing_px: float = 28.0) -> np.ndarray:
    """Draw a CCVPE heading field as arrows (one per cell of a grid about ``spacing_px`` image pixels apart, each
    as long as the field's concentration there allows, at most 0.45 of the spacing; cyan).

    Args:
        image: (H, W, 3) uint8 drawing (not modified).
        field: (H', W', 4) per cell: (u, v) on the tile, heading in degrees clockwise from north, length in [0, 1]
            (:attr:`geodistill.inference.Prediction.orientation_field`).
        uv_scale: factor from tile pixels to ``image`` pixels.
        spacing_px: target distance between arrows, image pixels.

    Returns:
        (H, W, 3) uint8 image.
    """
    canvas = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(canvas)
    height, width = field.shape[:2]
    cell_px = float(np.hypot(*(field[0, min(1, width - 1), :2] - field[0, 0, :2]))) * uv_scale if width > 1 else 0.0
    step = max(1, int(round(spacing_px / cell_px))) if cell_px > 0 else 1
    offset = step // 2
    for row in range(offset, height, step):
        for col in range(offset, width, step):
            u, v, heading, length = (float(x) for x in field[row, col])
            if not all(math.isfinite(x) for x in (u, v, heading, length)) or length <= 0.05:
                continue
            _draw_arrow(draw, (u * uv_scale, v * uv_scale), heading, length=0.45 * step * cell_px * min(length, 1.0),
                        width=1, colour=FIELD_COLOUR)
    return np.asarray(canvas)


def _draw_arrow(draw: ImageDraw.ImageDraw, start: tuple[float, float], heading_deg: float,
                length: float, width: int, colour: tuple[int, int, int] = HEADING_COLOUR) -> None:
    heading_rad = math.radians(heading_deg)
    direction = (math.sin(heading_rad), -math.cos(heading_rad))
    tip = (start[0] + direction[0] * length, start[1] + direction[1] * length)
    draw.line([start, tip], fill=colour, width=width + 1)
    head = length * 0.3
    for side in (+1, -1):
        angle = heading_rad + math.pi + side * math.radians(25)
        corner = (tip[0] + math.sin(angle) * head, tip[1] - math.cos(angle) * head)
        draw.polygon([tip, corner, (tip[0] - direction[0] * head * 0.6, tip[1] - direction[1] * head * 0.6)],
                     fill=colour)

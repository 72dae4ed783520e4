"""The Explore view of one sample: panorama with FoV, teacher/student heatmaps, their difference, the BEV.

Predictions are read by attribute (``uv``, ``latlon``, ``heading_deg``, ``confidence``, ``prob_on_tile``,
``fov_mask``, ``uv_gt``, ``error_m``, ``heading_gt_deg``: the fields of
:class:`geodistill.inference.Prediction`); this module does not import the models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geodistill import keys
from geodistill.calibration import confidence_sentence
from geodistill.viz.bev import bev_on_tile
from geodistill.viz.heatmap import difference_overlay, draw_localization, heatmap_overlay
from geodistill.viz.images import to_rgb_uint8
from geodistill.viz.panorama import draw_fov

DISPLAY_SIZE = 512  # smallest side of the drawn tiles, pixels


@dataclass
class ExploreView:
    """The drawings of the Explore tab, each an (H, W, 3) uint8 image, and a Markdown summary."""

    panorama: np.ndarray
    teacher: np.ndarray
    student: np.ndarray
    difference: np.ndarray
    bev: np.ndarray
    summary: str


def _scalar(value, default: float) -> float:
    if value is None:
        return default
    number = float(np.asarray(value.detach().cpu() if hasattr(value, "detach") else value).reshape(-1)[0])
    return number if math.isfinite(number) else default


def display_heading(prediction) -> float | None:
    """The heading to draw: the estimated one, else the known one (the sample's), else None."""
    for heading in (prediction.heading_deg, getattr(prediction, "heading_gt_deg", None)):
        if heading is not None and math.isfinite(heading):
            return float(heading)
    return None


def _marked_heatmap(sat: np.ndarray, prediction, opacity: float, side: int) -> np.ndarray:
    prob = prediction.prob_on_tile if prediction.prob_on_tile is not None else np.zeros(sat.shape[:2], np.float32)
    image = heatmap_overlay(sat, prob, opacity, size=side)
    return draw_localization(image, prediction.uv, prediction.uv_gt, display_heading(prediction),
                             uv_scale=side / sat.shape[0])


def explore_view(sample: dict, student, teacher=None, opacity: float = 0.6, show_fov: bool = True) -> ExploreView:
    """Draw one localized sample.

    Args:
        sample: the sample dict (``pano`` (3,Hp,Wp), ``sat`` (3,S,S), ``meters_per_pixel``, ...).
        student: the prediction of the student (limited FoV).
        teacher: the prediction of the teacher (full panorama), or None.
        opacity: heatmap opacity at the peak, [0, 1].
        show_fov: dim the panorama outside the student's field of view.

    Returns:
        An :class:`ExploreView`.
    """
    sat = to_rgb_uint8(sample[keys.SAT])
    side = max(sat.shape[0], DISPLAY_SIZE)
    student_image = _marked_heatmap(sat, student, opacity, side)
    if teacher is not None:
        teacher_image = _marked_heatmap(sat, teacher, opacity, side)
        difference = difference_overlay(sat, _prob(teacher, sat), _prob(student, sat), opacity, size=side)
        difference = draw_localization(difference, student.uv, student.uv_gt, uv_scale=side / sat.shape[0])
    else:
        teacher_image = difference = np.full_like(student_image, 235)
    mpp = _scalar(sample.get(keys.METERS_PER_PIXEL), student.meters_per_pixel)
    bev = bev_on_tile(sat, sample[keys.PANO], student.uv, mpp, display_heading(student), student.fov_mask,
                      camera_height_m=_scalar(sample.get(keys.CAMERA_HEIGHT_M), 2.0), uv_gt=student.uv_gt, size=side)
    panorama = draw_fov(sample[keys.PANO], student.fov_mask, show_mask=show_fov)
    return ExploreView(panorama, teacher_image, student_image, difference, bev, prediction_summary(student, teacher))


def case_thumbnail(sample: dict, prediction, size: int = 384, opacity: float = 0.6) -> np.ndarray:
    """A small tile with the heatmap, the prediction and the truth, for a gallery of cases, (size, size, 3)."""
    sat = to_rgb_uint8(sample[keys.SAT])
    image = heatmap_overlay(sat, _prob(prediction, sat), opacity, size=size)
    return draw_localization(image, prediction.uv, prediction.uv_gt, uv_scale=size / sat.shape[0])


def _prob(prediction, sat: np.ndarray) -> np.ndarray:
    if prediction.prob_on_tile is None:
        return np.zeros(sat.shape[:2], np.float32)
    return prediction.prob_on_tile


def _cells(prediction) -> list[str]:
    latlon = "–" if prediction.latlon is None else f"{prediction.latlon[0]:.7f}, {prediction.latlon[1]:.7f}"
    error = "–" if prediction.error_m is None else f"**{prediction.error_m:.2f} m**"
    heading = display_heading(prediction)
    estimated = prediction.heading_deg is not None
    heading_text = "–" if heading is None else f"{heading:.1f}°" + ("" if estimated else " (known)")
    fov_mask = np.asarray(prediction.fov_mask, dtype=bool)
    visible = 360.0 * float(fov_mask.mean()) if fov_mask.size else 360.0
    return [latlon, f"{prediction.uv[0]:.1f}, {prediction.uv[1]:.1f}", error, heading_text,
            confidence_sentence(prediction.confidence, getattr(prediction, "unlike_training", False)),
            f"{visible:.0f}°"]


ROW_NAMES = ("predicted lat, lon", "pixel (u, v)", "error", "heading", "confidence", "FoV seen")


def prediction_summary(student, teacher=None) -> str:
    """A Markdown table with the position, error, heading, confidence and visible FoV of each model."""
    columns = ([("teacher", _cells(teacher))] if teacher is not None else []) + [("student", _cells(student))]
    lines = ["| | " + " | ".join(name for name, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row, row_name in enumerate(ROW_NAMES):
        lines.append(f"| {row_name} | " + " | ".join(cells[row] for _, cells in columns) + " |")
    if student.uv_gt is not None:
        lines.append(f"\nGround truth: pixel {student.uv_gt[0]:.1f}, {student.uv_gt[1]:.1f} (green dot); "
                     "prediction: red ring; heading: yellow arrow.")
    return "\n".join(lines)

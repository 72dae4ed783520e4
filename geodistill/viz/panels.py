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
from geodistill.viz.heatmap import (difference_overlay, draw_localization, draw_orientation_field, heatmap_overlay,
                                   with_colour_bar)
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


def _marked_heatmap(sat: np.ndarray, prediction, opacity: float, side: int, show_field: bool = False) -> np.ndarray:
    prob = _prob(prediction, sat)
    image = heatmap_overlay(sat, prob, opacity, size=side)
    field = getattr(prediction, "orientation_field", None)
    if show_field and field is not None:
        image = draw_orientation_field(image, field, uv_scale=side / sat.shape[0])
    image = draw_localization(image, prediction.uv, prediction.uv_gt, display_heading(prediction),
                              uv_scale=side / sat.shape[0])
    return with_colour_bar(image, "magma", f"{float(prob.max()):.2g}", "0", "P(cell)")


def _difference_map(sat: np.ndarray, teacher, student, opacity: float, side: int) -> np.ndarray:
    teacher_prob, student_prob = _prob(teacher, sat), _prob(student, sat)
    image = difference_overlay(sat, teacher_prob, student_prob, opacity, size=side)
    image = draw_localization(image, student.uv, student.uv_gt, uv_scale=side / sat.shape[0])
    return with_colour_bar(image, "RdBu_r", "student more", "teacher more", "difference")


def explore_view(sample: dict, student, teacher=None, opacity: float = 0.6, show_fov: bool = True,
                 heading_mode: str | None = None, show_field: bool = False) -> ExploreView:
    """Draw one localized sample.

    Args:
        sample: the sample dict (``pano`` (3,Hp,Wp), ``sat`` (3,S,S), ``meters_per_pixel``, ...).
        student: the prediction of the student (limited FoV).
        teacher: the prediction of the teacher (full panorama), or None.
        opacity: heatmap opacity at the peak, [0, 1].
        show_fov: dim the panorama outside the student's field of view.
        heading_mode: the heading mode the models ran with (``45``, ``full``, ``aligned``; None: not said), so the
            summary can say when a heading was asked for but not estimated.
        show_field: draw each network's heading field on its heatmap (CCVPE models; others have none).

    Returns:
        An :class:`ExploreView`.
    """
    sat = to_rgb_uint8(sample[keys.SAT])
    side = max(sat.shape[0], DISPLAY_SIZE)
    student_image = _marked_heatmap(sat, student, opacity, side, show_field)
    if teacher is not None:
        teacher_image = _marked_heatmap(sat, teacher, opacity, side, show_field)
        difference = _difference_map(sat, teacher, student, opacity, side)
    else:
        teacher_image = difference = np.full_like(student_image, 235)
    mpp = _scalar(sample.get(keys.METERS_PER_PIXEL), student.meters_per_pixel)
    bev = bev_on_tile(sat, sample[keys.PANO], student.uv, mpp, display_heading(student), student.fov_mask,
                      camera_height_m=_scalar(sample.get(keys.CAMERA_HEIGHT_M), 2.0), uv_gt=student.uv_gt, size=side)
    panorama = draw_fov(sample[keys.PANO], student.fov_mask, show_mask=show_fov)
    file_side = int(sample.get(keys.SAT_FILE_SIDE) or sat.shape[0])
    return ExploreView(panorama, teacher_image, student_image, difference, bev,
                       prediction_summary(student, teacher, heading_mode, file_side / sat.shape[0], file_side))


def case_thumbnail(sample: dict, prediction, size: int = 384, opacity: float = 0.6) -> np.ndarray:
    """A small tile with the heatmap, the prediction and the truth, for a gallery of cases, (size, size, 3)."""
    sat = to_rgb_uint8(sample[keys.SAT])
    image = heatmap_overlay(sat, _prob(prediction, sat), opacity, size=size)
    return draw_localization(image, prediction.uv, prediction.uv_gt, uv_scale=size / sat.shape[0])


def _prob(prediction, sat: np.ndarray) -> np.ndarray:
    if prediction.prob_on_tile is None:
        return np.zeros(sat.shape[:2], np.float32)
    return prediction.prob_on_tile


def heading_text(prediction, heading_mode: str | None) -> str:
    """The heading as the summary and the map's popups say it: estimated, given (north-aligned), or not estimated
    (asked for, but the model has no orientation estimate: never shown as a known heading)."""
    if prediction.heading_deg is not None and math.isfinite(prediction.heading_deg):
        return f"{prediction.heading_deg:.1f}° (estimated)"
    if heading_mode in ("45", "full"):
        return "not estimated (this model has no orientation estimate)"
    known = getattr(prediction, "heading_gt_deg", None)
    if known is None or not math.isfinite(known):
        return "unknown"
    return f"{known:.1f}° (given: " + ("north-aligned)" if heading_mode == "aligned" else "the sample's)")


def _cells(prediction, heading_mode: str | None, to_file: float) -> list[str]:
    latlon = "–" if prediction.latlon is None else f"{prediction.latlon[0]:.7f}, {prediction.latlon[1]:.7f}"
    error = "–" if prediction.error_m is None else f"**{prediction.error_m:.2f} m**"
    fov_mask = np.asarray(prediction.fov_mask, dtype=bool)
    visible = 360.0 * float(fov_mask.mean()) if fov_mask.size else 360.0
    return [latlon, f"{prediction.uv[0] * to_file:.1f}, {prediction.uv[1] * to_file:.1f}", error,
            heading_text(prediction, heading_mode),
            confidence_sentence(prediction.confidence, getattr(prediction, "unlike_training", False)),
            f"{visible:.0f}°"]


CONFIDENCE_NOTE = ("*Confidence* is the calibrated chance that the prediction lies within 5 m of the truth, fitted "
                   "on held-out data for this checkpoint (`python -m geodistill calibrate`); below 50 %, or for "
                   "imagery unlike the training imagery, the prediction is called unreliable. The heatmaps' colour "
                   "bars show the probability of each cell, P(cell).")


def prediction_summary(student, teacher=None, heading_mode: str | None = None, to_file: float = 1.0,
                       file_side: int | None = None) -> str:
    """A Markdown table with the position (pixels of the tile file: ``to_file`` file pixels per tile pixel, the
    file ``file_side`` wide), error, heading, confidence and visible FoV of each model, and what confidence means."""
    pixel_row = f"pixel (u, v) in the {file_side}×{file_side} tile file" if file_side else "pixel (u, v)"
    row_names = ("predicted lat, lon", pixel_row, "error", "heading", "confidence", "FoV seen")
    columns = ([("teacher", _cells(teacher, heading_mode, to_file))] if teacher is not None else []) + \
        [("student", _cells(student, heading_mode, to_file))]
    lines = ["| | " + " | ".join(name for name, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row, row_name in enumerate(row_names):
        lines.append(f"| {row_name} | " + " | ".join(cells[row] for _, cells in columns) + " |")
    if student.uv_gt is not None:
        lines.append(f"\nGround truth: file pixel {student.uv_gt[0] * to_file:.1f}, {student.uv_gt[1] * to_file:.1f} "
                     "(green dot); prediction: red ring; heading: yellow arrow.")
    lines.append("\n" + CONFIDENCE_NOTE)
    return "\n".join(lines)

"""Evaluation metrics (method.md §9): errors in metres and degrees, recall@k, mean/median accumulators.

Metric objects are built with the prediction key they read, so argmax, soft-argmax, teacher and student share one
implementation::

    metric = PositionError(key="xy_max")
    metric.update(pred, batch)          # per batch
    metric.compute()                    # {"n": ..., "mean": ..., "median": ...}

Samples whose ``has_gt`` is False are skipped.
"""

from __future__ import annotations

import torch

from geodistill import keys
from geodistill.geometry.angles import angle_error_deg as _angle_error


def position_error_m(xy_pred: torch.Tensor, xy_gt: torch.Tensor) -> torch.Tensor:
    """Euclidean distance (...,) in metres between (...,2) metric positions."""
    return torch.linalg.vector_norm(xy_pred.double() - xy_gt.double(), dim=-1)


def angle_error_deg(angle_pred_deg: torch.Tensor, angle_gt_deg: torch.Tensor) -> torch.Tensor:
    """min(|Δ|, 360 − |Δ|) in degrees, in [0, 180]."""
    return _angle_error(torch.as_tensor(angle_pred_deg).double(), torch.as_tensor(angle_gt_deg).double())


def recall_at(errors: torch.Tensor, threshold: float) -> float:
    """Fraction of errors <= threshold (0.0 for no errors)."""
    if errors.numel() == 0:
        return 0.0
    return float((errors <= threshold).double().mean())


class MeanMedian:
    """Accumulates values and reports count, mean and median."""

    def __init__(self) -> None:
        self.values: list[torch.Tensor] = []

    def reset(self) -> None:
        self.values = []

    def add(self, values: torch.Tensor) -> None:
        self.values.append(values.detach().double().reshape(-1).cpu())

    def all(self) -> torch.Tensor:
        return torch.cat(self.values) if self.values else torch.zeros(0, dtype=torch.float64)

    def compute(self) -> dict[str, float]:
        values = self.all()
        if values.numel() == 0:
            return {"n": 0, "mean": float("nan"), "median": float("nan")}
        # torch.median returns the lower middle element; use the usual average of the two middle ones.
        return {"n": int(values.numel()), "mean": float(values.mean()), "median": float(values.quantile(0.5))}


def _gt_mask(data: dict, size: int) -> torch.Tensor:
    has_gt = data.get(keys.HAS_GT)
    if has_gt is None:
        return torch.ones(size, dtype=torch.bool)
    return torch.as_tensor(has_gt, dtype=torch.bool).reshape(-1).cpu()


class PositionError(MeanMedian):
    """Position error in metres of ``pred[key]`` (B,2) against ``data[gt_key]`` (B,2)."""

    def __init__(self, key: str = keys.XY_MAX, gt_key: str = keys.XY_GT) -> None:
        super().__init__()
        self.key, self.gt_key = key, gt_key

    def errors(self, pred: dict, data: dict) -> torch.Tensor:
        """Per-sample errors (B,) of this batch (NaN where there is no ground truth)."""
        errors = position_error_m(pred[self.key].detach().cpu(), torch.as_tensor(data[self.gt_key]).cpu())
        mask = _gt_mask(data, errors.shape[0])
        return torch.where(mask, errors, torch.full_like(errors, float("nan")))

    def update(self, pred: dict, data: dict) -> torch.Tensor:
        errors = self.errors(pred, data)
        self.add(errors[~errors.isnan()])
        return errors


class AngleError(PositionError):
    """Heading error min(|Δ|, 360 − |Δ|) in degrees of ``pred[key]`` (B,) against ``data[gt_key]``."""

    def __init__(self, key: str = keys.HEADING, gt_key: str = keys.HEADING_GT) -> None:
        super().__init__(key, gt_key)

    def errors(self, pred: dict, data: dict) -> torch.Tensor:
        errors = angle_error_deg(pred[self.key].detach().cpu(), torch.as_tensor(data[self.gt_key]).cpu())
        mask = _gt_mask(data, errors.shape[0])
        return torch.where(mask, errors, torch.full_like(errors, float("nan")))


class Recall(PositionError):
    """Share of samples with a position error <= ``threshold_m``."""

    def __init__(self, threshold_m: float, key: str = keys.XY_MAX, gt_key: str = keys.XY_GT) -> None:
        super().__init__(key, gt_key)
        self.threshold_m = threshold_m

    def compute(self) -> dict[str, float]:
        values = self.all()
        return {"n": int(values.numel()), "recall": recall_at(values, self.threshold_m)}


def summarize_position_errors(errors: torch.Tensor, thresholds_m: tuple[float, ...] = (1.0, 3.0, 5.0)) -> dict[str, float]:
    """``n``, ``mean_m``, ``median_m`` and ``recall_<k>m`` of a (N,) error vector (the evaluation JSON keys)."""
    errors = errors.double().reshape(-1)
    errors = errors[~errors.isnan()]
    empty = errors.numel() == 0
    summary = {
        "n": int(errors.numel()),
        "mean_m": float("nan") if empty else float(errors.mean()),
        "median_m": float("nan") if empty else float(errors.quantile(0.5)),
    }
    for threshold in thresholds_m:
        summary[f"recall_{threshold:g}m"] = recall_at(errors, threshold)
    return summary

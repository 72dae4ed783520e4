"""Plots as images: the localization error CDF, training curves read from ``events.jsonl`` records and the
reliability diagram of a calibrated confidence."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from geodistill.viz.images import figure_to_rgb

RECALL_THRESHOLDS_M = (1.0, 3.0, 5.0)


def _new_figure(width_in: float, height_in: float, ncols: int = 1):
    # A bare Figure (no pyplot) keeps drawing thread-safe and leaves the global backend alone.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=100)
    axes = figure.subplots(1, ncols, squeeze=False)
    return figure, list(axes[0])


def error_cdf(errors_m: Mapping[str, Iterable[float]] | Iterable[float], max_m: float | None = None,
              title: str = "Localization error") -> np.ndarray:
    """Cumulative share of queries localized within a distance, one curve per model.

    Args:
        errors_m: errors in metres, either one sequence or ``{label: sequence}``.
        max_m: right end of the x axis (default: just past the largest error, at least 10 m).
        title: plot title.

    Returns:
        (H, W, 3) uint8 image of the plot.
    """
    curves = dict(errors_m) if isinstance(errors_m, Mapping) else {"errors": errors_m}
    curves = {label: np.sort(np.asarray(list(values), dtype=np.float64)) for label, values in curves.items()}
    curves = {label: values[np.isfinite(values)] for label, values in curves.items()}
    everything = np.concatenate([v for v in curves.values()] + [np.zeros(0)])
    if max_m is None:
        max_m = max(10.0, 1.02 * float(everything.max()) if everything.size else 10.0)
    figure, (axis,) = _new_figure(6.4, 4.0)
    for label, values in curves.items():
        if values.size == 0:
            continue
        share = np.arange(1, values.size + 1) / values.size
        xs = np.concatenate([[0.0], values])
        ys = np.concatenate([[0.0], share])
        median = float(np.median(values))
        axis.step(xs, ys * 100, where="post", label=f"{label} (n={values.size}, median {median:.2f} m)")
    for threshold in RECALL_THRESHOLDS_M:
        axis.axvline(threshold, color="0.7", linewidth=0.8, linestyle="--")
    axis.set_xlim(0, max_m)
    axis.set_ylim(0, 100)
    axis.set_xlabel("error (m)")
    axis.set_ylabel("queries within error (%)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    if any(v.size for v in curves.values()):
        axis.legend(loc="lower right", fontsize=8)
    else:
        axis.text(0.5, 0.5, "no errors to plot", ha="center", va="center", transform=axis.transAxes)
    figure.tight_layout()
    return figure_to_rgb(figure)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def training_curves(events: Iterable[Mapping], title: str = "") -> np.ndarray:
    """Training loss against step and validation error against epoch, from event records.

    Step records are those with a ``step`` and ``loss/*`` numbers; validation records are those with
    numbers whose key ends in ``mean_m`` or ``median_m`` (for example ``val/mean_m`` or
    ``val/student/median_m``), plotted against their ``epoch``.

    Returns:
        (H, W, 3) uint8 image with two panels.
    """
    losses: dict[str, list[tuple[float, float]]] = {}
    validation: dict[str, list[tuple[float, float]]] = {}
    for record in events:
        for key, value in record.items():
            if not _finite(value):
                continue
            if key.startswith("loss/") and _finite(record.get("step")):
                losses.setdefault(key, []).append((record["step"], value))
            elif (key.endswith("mean_m") or key.endswith("median_m")) and _finite(record.get("epoch")):
                validation.setdefault(key, []).append((record["epoch"], value))
    figure, (loss_axis, val_axis) = _new_figure(10.0, 3.6, ncols=2)
    for key, points in sorted(losses.items()):
        steps, values = zip(*points)
        label = key.removeprefix("loss/")
        loss_axis.plot(steps, values, label=f"level {label}" if label.isdigit() else label, linewidth=1.2,
                       marker="o" if len(points) == 1 else None)
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("loss")
    loss_axis.set_title("training loss")
    for key, points in sorted(validation.items()):
        epochs, values = zip(*points)
        loss_style = "--" if key.endswith("median_m") else "-"
        val_axis.plot(epochs, values, loss_style, marker="o", markersize=3, label=key, linewidth=1.2)
    from matplotlib.ticker import MaxNLocator

    val_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    val_axis.set_xlabel("epoch")
    val_axis.set_ylabel("error (m)")
    val_axis.set_title("validation")
    for axis, series in ((loss_axis, losses), (val_axis, validation)):
        axis.grid(alpha=0.3)
        if series:
            axis.legend(fontsize=8)
        else:
            axis.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axis.transAxes, color="0.5")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure_to_rgb(figure)


def reliability_diagram(curves: Mapping[str, Iterable[Mapping]], tolerance: float = 0.10,
                        title: str = "Confidence against the observed within-5 m rate") -> np.ndarray:
    """Predicted confidence (x) against the observed hit rate (y) of equal-count bins, one curve per label.

    Args:
        curves: ``{label: bins}``, each bin a mapping with ``predicted``, ``observed`` and ``n``
            (:func:`geodistill.calibration.reliability_bins`).
        tolerance: half-width of the shaded band around the diagonal (perfect calibration).
    """
    figure, (axis,) = _new_figure(6.0, 5.6)
    diagonal = np.array([0.0, 1.0])
    axis.fill_between(diagonal, diagonal - tolerance, diagonal + tolerance, color="0.9",
                      label=f"within ±{100 * tolerance:.0f} points")
    axis.plot(diagonal, diagonal, color="0.5", linewidth=1.0, linestyle="--", label="perfect calibration")
    for label, bins in curves.items():
        bins = list(bins)
        count = sum(int(b["n"]) for b in bins)
        axis.plot([b["predicted"] for b in bins], [b["observed"] for b in bins], marker="o",
                  markersize=4, linewidth=1.2, label=f"{label} (n={count})")
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted confidence (mean of the bin)",
             ylabel="observed share within 5 m")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    return figure_to_rgb(figure)

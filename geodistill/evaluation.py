"""The VIGOR evaluation protocol (method.md §9, anchors.md §4), reusable by the CLI, the engine and the app.

Every query is its panorama against its positive tile. Errors are Euclidean distances in metres between the
predicted and true positions (per-city metres per pixel come with the samples). Reported: mean, median and
recall@1/3/5 m overall and per city, with the setting (area, FoV, orientation, checkpoint role) beside them.

Reproducible perturbations: the FoV window centre and the test yaw of query ``i`` come from a
``torch.Generator`` seeded from ``(seed, stream, i)``, so every model evaluated with the same seed sees the
same windows and the same headings, whatever the batch size, limit or orientation setting.

Orientation settings: ``aligned`` (no yaw, heading known), ``45`` (yaw uniform in [-45, 45)), ``unknown`` (yaw
uniform in [0, 360)). The two perturbed settings need a localizer that estimates headings: an orientation model
(``unknown``: one trained for the full circle, ``orientation.range_deg=180``) or a CCVPE checkpoint, which
estimates its own heading over the full circle. Under ``45`` the localizer gets the prior 0 ± 45°.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from geodistill import keys
from geodistill.errors import CheckpointError, DataError
from geodistill.geometry.angles import wrap_deg
from geodistill.geometry.panorama import roll_panorama
from geodistill.inference import FovArg, Prediction
from geodistill.metrics import angle_error_deg, recall_at, summarize_position_errors

logger = logging.getLogger("geodistill.evaluation")

ORIENTATION_SETTINGS = ("aligned", "45", "unknown")
RECALL_RADII_M = (1, 3, 5)
RECALL_ANGLES_DEG = (1, 3, 5)
FOV_STREAM = 1
YAW_STREAM = 2
ProgressCallback = Callable[[int, int], None]

CSV_COLUMNS = (  # u_pred..v_gt: pixels of the tile as fed to the model; *_file_px: pixels of the tile file
    "index", "panorama", "city", "u_pred", "v_pred", "u_gt", "v_gt", "error_m", "confidence", "peak_probability",
    "heading_true_deg", "heading_pred_deg", "heading_error_deg", "fov_deg", "fov_center_deg",
    "u_pred_file_px", "v_pred_file_px", "u_gt_file_px", "v_gt_file_px", "east_pred_m", "north_pred_m",
    "east_gt_m", "north_gt_m", "tile_file_px",
)


@runtime_checkable
class LocalizerLike(Protocol):
    """What the evaluation reads of a localizer (:class:`geodistill.inference.Localizer` and
    :class:`geodistill.inference.TileCentreBaseline` satisfy it).

    Attributes:
        role: the network evaluated (``student``, ``teacher``, ``weak``, ``baseline``...), reported in the setting.
        orientation: the orientation model, or None (a CCVPE localizer needs none: it estimates its own heading).
        orientation_range_deg: half range of headings the localizer can estimate (its orientation model's, 180 for
            CCVPE), None when it cannot estimate one; a perturbed setting needs one (a ``baseline`` needs none).
        orientation_source: where the orientation model came from (for messages), "" without one.
    """

    role: str
    orientation: Any
    orientation_range_deg: float | None
    orientation_source: str

    def predict_batch(self, samples: Sequence[dict], fov_deg: FovArg = None, fov_center_deg: FovArg = 0.0,
                      with_heatmap: bool = True, estimate_heading: bool | None = None,
                      heading_prior_deg: FovArg = None, heading_range_deg: FovArg = None,
                      location_prior=None) -> list[Prediction]:
        """One prediction per sample; ``estimate_heading`` False takes the samples' headings as known; a heading
        prior (degrees) ± range restricts the estimate; ``location_prior`` (per sample ``(u, v, sigma_px)`` or
        None) is a Gaussian position prior fused into the heatmap (``refine``'s GPS prior)."""
        ...


def query_generator(seed: int, index: int, stream: int) -> torch.Generator:
    """The generator of one query's random draws; independent of batching and of the other streams."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(stream), int(index)]).generate_state(2, np.uint32)
    generator = torch.Generator()
    generator.manual_seed(int(state[0]) << 32 | int(state[1]))
    return generator


def fov_center_for_query(seed: int, index: int) -> float:
    """Centre of query ``index``'s FoV window, degrees from the panorama centre line, uniform in [-180, 180)."""
    return float(torch.rand(1, generator=query_generator(seed, index, FOV_STREAM), dtype=torch.float64)) * 360.0 - 180.0


def yaw_for_query(seed: int, index: int, orientation: str) -> float:
    """Clockwise yaw applied to query ``index``: 0 (aligned), uniform [-45, 45) (45) or [0, 360) (unknown)."""
    check_orientation_setting(orientation)
    if orientation == "aligned":
        return 0.0
    draw = float(torch.rand(1, generator=query_generator(seed, index, YAW_STREAM), dtype=torch.float64))
    return draw * 90.0 - 45.0 if orientation == "45" else draw * 360.0


def check_orientation_setting(orientation: str) -> None:
    if orientation not in ORIENTATION_SETTINGS:
        raise ValueError(f"orientation setting {orientation!r} is not one of {', '.join(ORIENTATION_SETTINGS)}")


def check_orientation_support(localizer: LocalizerLike, orientation: str) -> None:
    """Stop with a clear message when the localizer cannot handle the orientation setting.

    Raises:
        CheckpointError: no orientation model for a perturbed setting, or a +-45 deg model for ``unknown``.
    """
    check_orientation_setting(orientation)
    if orientation == "aligned" or localizer.role == "baseline":
        return
    if localizer.orientation_range_deg is None:
        raise CheckpointError(f"--orientation {orientation} perturbs the query headings and needs an orientation "
                              "model: pass --orientation-checkpoint (train one with train.task=orientation)")
    range_deg = float(localizer.orientation_range_deg)
    source = localizer.orientation_source or "the orientation model"
    if orientation == "unknown" and range_deg < 180.0:
        raise CheckpointError(f"--orientation unknown needs an orientation model trained for the full circle "
                              f"(orientation.range_deg=180); {source} covers only +-{range_deg:g} deg")
    if orientation == "45" and range_deg < 45.0:
        raise CheckpointError(f"--orientation 45 needs an orientation model covering +-45 deg; {source} covers "
                              f"only +-{range_deg:g} deg")


def perturb_heading(sample: dict, yaw_deg: float) -> dict:
    """A copy of ``sample`` seen after the camera turned clockwise by ``yaw_deg`` (panorama rolled, heading moved)."""
    if yaw_deg == 0.0:
        return sample
    rotated = dict(sample)
    pano = torch.as_tensor(sample[keys.PANO])
    rotated[keys.PANO] = roll_panorama(pano[None], yaw_deg)[0]
    heading = float(sample.get(keys.HEADING_GT, 0.0))
    rotated[keys.HEADING_GT] = torch.tensor(wrap_deg((0.0 if math.isnan(heading) else heading) + yaw_deg),
                                            dtype=torch.float32)
    if keys.FOV_MASK in sample:
        mask = torch.as_tensor(sample[keys.FOV_MASK]).to(torch.float32).view(1, 1, 1, -1)
        rotated[keys.FOV_MASK] = roll_panorama(mask, yaw_deg).view(-1) > 0.5
    return rotated


def summarize_errors(errors_m: Sequence[float]) -> dict[str, float | int | None]:
    """n, mean, median and recall@1/3/5 m of a list of errors (None instead of NaN when empty, for JSON)."""
    if len(errors_m) == 0:
        return {"n": 0, "mean_m": None, "median_m": None, **{f"recall_{r}m": None for r in RECALL_RADII_M}}
    return summarize_position_errors(torch.as_tensor(np.asarray(errors_m, dtype=np.float64)),
                                     tuple(float(r) for r in RECALL_RADII_M))


def summarize_angles(errors_deg: Sequence[float]) -> dict[str, float | None]:
    """Mean, median and recall@1/3/5 deg of heading errors."""
    if len(errors_deg) == 0:
        return {"ori_mean_deg": None, "ori_median_deg": None, **{f"ori_recall_{r}deg": None for r in RECALL_ANGLES_DEG}}
    errors = torch.as_tensor(np.asarray(errors_deg, dtype=np.float64))
    return {
        "ori_mean_deg": float(errors.mean()),
        "ori_median_deg": float(errors.quantile(0.5)),
        **{f"ori_recall_{r}deg": recall_at(errors, float(r)) for r in RECALL_ANGLES_DEG},
    }


@dataclass
class EvalResult:
    """Per-query rows plus their summary; ``to_dict()`` is the JSON of ``evaluate --json``."""

    setting: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def errors_m(self) -> np.ndarray:
        return np.array([row["error_m"] for row in self.rows], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = summarize_errors(self.errors_m)
        cities = sorted({row["city"] for row in self.rows})
        summary["per_city"] = {
            city: summarize_errors([row["error_m"] for row in self.rows if row["city"] == city]) for city in cities
        }
        if self.setting.get("orientation", "aligned") != "aligned":
            summary.update(summarize_angles(
                [row["heading_error_deg"] for row in self.rows if row["heading_error_deg"] is not None]))
        summary["setting"] = dict(self.setting)
        return summary

    def setting_tag(self) -> str:
        s = self.setting
        fov = s.get("fov_deg")
        parts = [f"area={s.get('area', '?')}", f"split={s.get('split', '?')}",
                 f"FoV={'360' if fov is None else f'{fov:g}'}deg", f"orientation={s.get('orientation', 'aligned')}",
                 f"role={s.get('role', '?')}"]
        if s.get("labels"):
            parts.append(f"labels={s['labels']}")
        return " ".join(parts)

    def format_table(self) -> str:
        """Plain-text table: overall and per-city rows, the setting on the header line."""
        summary = self.to_dict()
        selection = {"val_mean": " (chosen by mean error on a GT-labelled validation split)",
                     "last": " (last epoch)"}.get(self.setting.get("selection", ""), "")
        lines = [f"[{self.setting_tag()}]  checkpoint: {self.setting.get('checkpoint', '?')}{selection}",
                 f"{'':<14}{'n':>7}{'mean (m)':>10}{'median (m)':>12}{'R@1m':>8}{'R@3m':>8}{'R@5m':>8}"]

        def line(name: str, stats: dict) -> str:
            if not stats["n"]:
                return f"{name:<14}{0:>7}{'-':>10}{'-':>12}{'-':>8}{'-':>8}{'-':>8}"
            recalls = "".join(f"{100 * stats[f'recall_{r}m']:>7.1f}%" for r in RECALL_RADII_M)
            return f"{name:<14}{stats['n']:>7}{stats['mean_m']:>10.2f}{stats['median_m']:>12.2f}{recalls}"

        lines.append(line("all", summary))
        lines += [line(city, stats) for city, stats in summary["per_city"].items()]
        if summary.get("ori_mean_deg") is not None:
            recalls = ", ".join(f"R@{r}deg {100 * summary[f'ori_recall_{r}deg']:.1f}%" for r in RECALL_ANGLES_DEG)
            lines.append(f"heading error: mean {summary['ori_mean_deg']:.2f} deg, median "
                         f"{summary['ori_median_deg']:.2f} deg, {recalls}")
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> Path:
        return _write_atomically(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    def write_csv(self, path: str | Path) -> Path:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({key: "" if row.get(key) is None else row[key] for key in CSV_COLUMNS})
        return _write_atomically(Path(path), buffer.getvalue())


def _write_atomically(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def evaluate_localizer(localizer: LocalizerLike, dataset: Sequence[dict], *, fov_deg: float | None = None,
                       orientation: str = "aligned", seed: int = 0, limit: int | None = None, every: int = 1,
                       batch_size: int = 8, progress: ProgressCallback | None = None,
                       setting: dict | None = None) -> EvalResult:
    """Evaluate a localizer on positive queries of a dataset.

    Args:
        localizer: anything that satisfies :class:`LocalizerLike` (a :class:`geodistill.inference.Localizer`, the
            tile-centre baseline). The heading is estimated exactly when ``orientation`` is not ``aligned``: an
            orientation model attached to the localizer never runs in the aligned protocol.
        dataset: indexable samples with the keys of :mod:`geodistill.keys` (a ``VigorDataset``).
        fov_deg: visible field of view; None or 360 = full panorama.
        orientation: ``aligned``, ``45`` or ``unknown`` (see the module docstring).
        seed: seed of the FoV centres and test yaws.
        limit: evaluate at most this many queries (the first ones), None = all.
        every: evaluate every ``every``-th query only (indices 0, every, 2 every, ...; a subset spread over the
            whole split, whose windows and headings are those of the full run), then ``limit``.
        batch_size: queries per forward pass.
        progress: called as ``progress(done, total)`` after every batch.
        setting: extra entries for the result's setting (area, split, checkpoint...).

    Returns:
        The :class:`EvalResult`.

    Raises:
        CheckpointError: the orientation setting needs a model the localizer lacks.
        DataError: the dataset is empty or holds no labelled query.
    """
    check_orientation_support(localizer, orientation)
    if fov_deg is not None and not 0.0 < fov_deg <= 360.0:
        raise ValueError(f"--fov must be in (0, 360] degrees, got {fov_deg:g}")
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    chosen = list(range(0, len(dataset), every))
    if limit is not None and limit > 0:
        chosen = chosen[:limit]
    total = len(chosen)
    if total == 0:
        raise DataError("the evaluation split holds no query (empty dataset)")
    windowed = fov_deg is not None and fov_deg < 360.0
    result = EvalResult(setting={
        **(setting or {}),
        "fov_deg": float(fov_deg) if windowed else None,
        "orientation": orientation,
        "role": localizer.role,
        "seed": int(seed),
        **({"every": int(every)} if every > 1 else {}),
    })
    skipped = 0
    for start in range(0, total, batch_size):
        indices = chosen[start:start + batch_size]
        queries, centres, yaws = [], [], []
        for index in indices:
            sample = dataset[index]
            if not bool(sample.get(keys.HAS_GT, True)):
                skipped += 1
                continue
            yaw = yaw_for_query(seed, index, orientation)
            queries.append((index, perturb_heading(sample, yaw)))
            centres.append(fov_center_for_query(seed, index) if windowed else 0.0)
            yaws.append(yaw)
        if queries:
            predictions = localizer.predict_batch([q for _, q in queries], fov_deg if windowed else None, centres,
                                                  with_heatmap=False, estimate_heading=orientation != "aligned",
                                                  heading_prior_deg=0.0 if orientation == "45" else None,
                                                  heading_range_deg=45.0 if orientation == "45" else None)
            for (index, query), prediction, centre in zip(queries, predictions, centres):
                result.rows.append(_row(index, query, prediction, fov_deg if windowed else None, centre))
        if progress is not None:
            progress(min(start + batch_size, total), total)
    if skipped:
        logger.warning("skipped %d queries without a ground-truth position", skipped)
    if not result.rows:
        raise DataError("no query of the evaluation split has a ground-truth position")
    return result


def _row(index: int, sample: dict, prediction: Prediction, fov_deg: float | None, centre: float) -> dict[str, Any]:
    heading_true = prediction.heading_gt_deg
    heading_pred = prediction.heading_deg
    heading_error = None
    if heading_true is not None and heading_pred is not None:
        heading_error = float(angle_error_deg(heading_pred, heading_true))
    uv_gt = prediction.uv_gt if prediction.uv_gt is not None else (np.nan, np.nan)
    xy_gt = prediction.xy_gt_m if prediction.xy_gt_m is not None else (np.nan, np.nan)
    tile_side = int(torch.as_tensor(sample[keys.SAT]).shape[-1])
    file_side = int(sample.get(keys.SAT_FILE_SIDE, tile_side))
    to_file = file_side / tile_side
    return {
        "index": index,
        "panorama": str(sample.get(keys.PANO_NAME, index)),
        "city": str(sample.get(keys.CITY, "unknown")),
        "u_pred": round(float(prediction.uv[0]), 3),
        "v_pred": round(float(prediction.uv[1]), 3),
        "u_gt": round(float(uv_gt[0]), 3),
        "v_gt": round(float(uv_gt[1]), 3),
        "error_m": float(prediction.error_m),
        "confidence": None if prediction.confidence is None else round(float(prediction.confidence), 6),
        "peak_probability": getattr(prediction, "peak_probability", None),
        "calibration_features": getattr(prediction, "calibration_features", None),
        "heading_true_deg": None if heading_true is None else round(heading_true, 3),
        "heading_pred_deg": None if heading_pred is None else round(heading_pred, 3),
        "heading_error_deg": heading_error,
        "fov_deg": fov_deg,
        "fov_center_deg": round(centre, 3) if fov_deg is not None else None,
        "u_pred_file_px": round(float(prediction.uv[0]) * to_file, 3),
        "v_pred_file_px": round(float(prediction.uv[1]) * to_file, 3),
        "u_gt_file_px": round(float(uv_gt[0]) * to_file, 3),
        "v_gt_file_px": round(float(uv_gt[1]) * to_file, 3),
        "east_pred_m": round(float(prediction.xy_m[0]), 3),
        "north_pred_m": round(float(prediction.xy_m[1]), 3),
        "east_gt_m": round(float(xy_gt[0]), 3),
        "north_gt_m": round(float(xy_gt[1]), 3),
        "tile_file_px": file_side,
    }

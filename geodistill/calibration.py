"""Honest confidence: the probability that a prediction lies within 5 m of the truth.

The localizer's raw peak probability is not a probability of anything the user cares about (a sharp but wrong
peak is common on imagery unlike the training data, and it shrinks with the search area). A per-checkpoint
calibrator turns a few features of the score map into ``P(error <= 5 m)``:

| feature            | meaning |
|--------------------|---------|
| ``logit_peak_mass`` | logit of the probability mass within ``radius_m`` of the peak cell |
| ``entropy_norm``    | entropy of the probability map / log(number of cells): 0 = one cell, 1 = flat |
| ``fov_fraction``    | visible fraction of the panorama's width (1 = 360°) |
| ``peak_score``      | highest cosine similarity of the score map |

The model is a logistic regression on the standardised features, fitted by Newton's method with a small ridge
penalty (a few thousand validation queries, four inputs: a model this small cannot overfit, extrapolates
monotonically in each input, and is stored as a handful of numbers in the checkpoint's ``config.json``;
isotonic regression on one score would drop the FoV as an input). What limited it in practice was the size of the
fitting set, not the model's form: fitted on the 80 panoramas of a checkpoint's validation split it was 8-13 points
underconfident in the lowest third on the test splits, so ``ship.sh`` fits it on 400 held-out panoramas of new
worlds of the training cities (docs/results.md). The distance of the peak from the tile centre, tried as a fifth
input, fitted the training cities better and the cross-area cities worse (16 points off in the middle third). :func:`reliability_bins` measures it.

Besides the confidence, a query whose best cosine similarity is below the lowest ``OOD_QUANTILE`` of the
validation queries is flagged as *unlike the training imagery*: the panorama matches nothing on the tile as well as
the training imagery did. :func:`confidence_sentence` is the one user-facing wording, shared by ``predict``, the
API and the app.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from geodistill.errors import CheckpointError

RADIUS_M = 5.0                 # the confidence is P(error <= RADIUS_M)
UNRELIABLE_BELOW = 0.5         # below this confidence a prediction is called unreliable
OOD_QUANTILE = 0.01            # peak cosine below this validation quantile = unlike the training imagery
FEATURES = ("logit_peak_mass", "entropy_norm", "fov_fraction", "peak_score")
CALIBRATOR_KIND = "logistic"
CALIBRATOR_VERSION = 1
_MASS_CLIP = 1e-4
_RIDGE = 1e-3


def heatmap_features(prob: np.ndarray, scores: np.ndarray, cell_m: float, fov_fraction: float,
                     radius_m: float = RADIUS_M) -> dict[str, float]:
    """The calibration inputs of one query.

    Args:
        prob: (H', W') probability map of the localizer (sums to 1).
        scores: (H', W') cosine similarities it came from.
        cell_m: metres per score-map cell.
        fov_fraction: visible fraction of the panorama's columns, in (0, 1].
        radius_m: radius of the peak mass, metres.

    Returns:
        ``{feature: value}`` for every name in :data:`FEATURES`, plus ``peak_probability`` and ``peak_mass``.
    """
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2 or prob.size == 0:
        raise ValueError(f"expected a (H, W) probability map, got shape {prob.shape}")
    if not cell_m > 0:
        raise ValueError(f"cell size must be positive, got {cell_m}")
    total = prob.sum()
    prob = prob / total if total > 0 else np.full_like(prob, 1.0 / prob.size)
    row, col = np.unravel_index(int(prob.argmax()), prob.shape)
    rows, cols = np.ogrid[: prob.shape[0], : prob.shape[1]]
    near = (rows - row) ** 2 + (cols - col) ** 2 <= (radius_m / cell_m) ** 2
    mass = float(np.clip(prob[near].sum(), _MASS_CLIP, 1.0 - _MASS_CLIP))
    positive = prob[prob > 0]
    entropy = float(-(positive * np.log(positive)).sum())
    return {
        "logit_peak_mass": math.log(mass / (1.0 - mass)),
        "entropy_norm": entropy / math.log(prob.size) if prob.size > 1 else 0.0,
        "fov_fraction": float(fov_fraction),
        "peak_score": float(np.max(scores)),
        "peak_probability": float(prob.max()),
        "peak_mass": mass,
    }


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass
class Calibrator:
    """Logistic map from :data:`FEATURES` to ``P(error <= radius_m)``; JSON-serialisable (``to_dict``)."""

    mean: list[float]
    scale: list[float]
    weights: list[float]        # one per feature
    bias: float
    peak_score_floor: float     # OOD_QUANTILE of the fitting queries' peak_score
    radius_m: float = RADIUS_M
    features: tuple[str, ...] = FEATURES
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def _matrix(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        missing = [name for name in self.features if rows and name not in rows[0]]
        if missing:
            raise KeyError(f"calibration features missing: {missing}")
        raw = np.array([[float(row[name]) for name in self.features] for row in rows], dtype=np.float64)
        return (raw - np.asarray(self.mean)) / np.asarray(self.scale)

    def confidence(self, features: dict[str, float]) -> float:
        """P(error <= radius_m) of one query."""
        return float(self.confidences([features])[0])

    def confidences(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        """P(error <= radius_m) of several queries, (N,)."""
        if not rows:
            return np.zeros(0)
        return _sigmoid(self._matrix(rows) @ np.asarray(self.weights) + self.bias)

    def unlike_training(self, features: dict[str, float]) -> bool:
        """True when the best match is weaker than nearly every fitting query's (out of distribution)."""
        return float(features["peak_score"]) < self.peak_score_floor

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": CALIBRATOR_KIND, "version": CALIBRATOR_VERSION, "radius_m": self.radius_m,
            "features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
            "weights": list(self.weights), "bias": self.bias, "peak_score_floor": self.peak_score_floor,
            "fitted_on": dict(self.fitted_on),
        }

    @classmethod
    def from_dict(cls, document: Any, source: str = "checkpoint") -> "Calibrator":
        """Read :meth:`to_dict`'s output back; a :class:`CheckpointError` naming ``source`` when it is damaged."""
        try:
            if document["kind"] != CALIBRATOR_KIND or document["version"] != CALIBRATOR_VERSION:
                raise ValueError(f"kind {document['kind']!r} version {document['version']!r} is not "
                                 f"{CALIBRATOR_KIND!r} version {CALIBRATOR_VERSION}")
            features = tuple(str(name) for name in document["features"])
            unknown = sorted(set(features) - set(FEATURES))
            numbers = [list(map(float, document[key])) for key in ("mean", "scale", "weights")]
            if unknown or any(len(values) != len(features) for values in numbers):
                raise ValueError(f"features {list(features)} do not match the stored numbers")
            if any(value <= 0 for value in numbers[1]):
                raise ValueError("non-positive feature scale")
            calibrator = cls(mean=numbers[0], scale=numbers[1], weights=numbers[2], bias=float(document["bias"]),
                             peak_score_floor=float(document["peak_score_floor"]),
                             radius_m=float(document["radius_m"]), features=features,
                             fitted_on=dict(document.get("fitted_on", {})))
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{source}: damaged confidence calibration ({error!r}); fit it again with "
                                  "python -m geodistill calibrate") from error
        if not all(math.isfinite(v) for v in [*calibrator.weights, calibrator.bias, *calibrator.mean]):
            raise CheckpointError(f"{source}: confidence calibration holds non-finite numbers")
        return calibrator


def fit_calibrator(rows: Sequence[dict[str, float]], hits: Sequence[bool], *, features: Sequence[str] = FEATURES,
                   radius_m: float = RADIUS_M, ridge: float = _RIDGE, fitted_on: dict | None = None) -> Calibrator:
    """Fit the logistic calibrator by Newton's method (ridge-penalised log-likelihood, bias unpenalised).

    Args:
        rows: feature dicts (:func:`heatmap_features`), one per query.
        hits: whether each query's error was within ``radius_m``.
        features: the inputs to use (a subset of :data:`FEATURES`).
        ridge: L2 penalty per query on the standardised weights.
        fitted_on: provenance stored with the calibrator (data, split, FoVs, counts).

    Raises:
        ValueError: fewer than 20 queries, or all hits / all misses (nothing to calibrate against).
    """
    y = np.asarray(hits, dtype=np.float64)
    if len(rows) != len(y):
        raise ValueError(f"{len(rows)} feature rows but {len(y)} outcomes")
    if len(y) < 20:
        raise ValueError(f"calibration needs at least 20 queries, got {len(y)}")
    if y.min() == y.max():
        raise ValueError(f"every calibration query was a {'hit' if y[0] else 'miss'} within {radius_m:g} m; "
                         "a confidence cannot be fitted (use more varied queries, e.g. several FoVs)")
    raw = np.array([[float(row[name]) for name in features] for row in rows], dtype=np.float64)
    mean, scale = raw.mean(axis=0), raw.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    x = np.hstack([(raw - mean) / scale, np.ones((len(y), 1))])
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], ridge * len(y))
    penalty[-1] = 0.0
    for _ in range(100):
        p = _sigmoid(x @ w)
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    peak_scores = np.array([float(row["peak_score"]) for row in rows])
    return Calibrator(mean=mean.tolist(), scale=scale.tolist(), weights=w[:-1].tolist(), bias=float(w[-1]),
                      peak_score_floor=float(np.quantile(peak_scores, OOD_QUANTILE)), radius_m=float(radius_m),
                      features=tuple(features), fitted_on=dict(fitted_on or {}, n=int(len(y)),
                                                               hit_rate=float(y.mean())))


def reliability_bins(confidences: Sequence[float], hits: Sequence[bool], bins: int = 3) -> list[dict[str, float]]:
    """Equal-count bins of predicted confidence: ``n``, ``lo``/``hi`` edges, mean ``predicted`` and ``observed`` rate.

    Equal counts keep every bin's observed rate measured on about ``N / bins`` queries (fixed-width bins can be
    nearly empty when a model is mostly sure or mostly unsure).
    """
    confidence = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(hits, dtype=np.float64)
    if len(confidence) != len(hit) or len(confidence) < bins:
        raise ValueError(f"need at least {bins} queries with one outcome each, got {len(confidence)} and {len(hit)}")
    order = np.argsort(confidence, kind="stable")
    result = []
    for part in np.array_split(order, bins):
        result.append({
            "n": int(len(part)), "lo": float(confidence[part].min()), "hi": float(confidence[part].max()),
            "predicted": float(confidence[part].mean()), "observed": float(hit[part].mean()),
        })
    return result


def is_unreliable(confidence: float | None, unlike_training: bool = False) -> bool:
    """True when a prediction should not be trusted: low calibrated confidence or out-of-distribution imagery."""
    return unlike_training or (confidence is not None and confidence < UNRELIABLE_BELOW)


def confidence_sentence(confidence: float | None, unlike_training: bool = False, radius_m: float = RADIUS_M) -> str:
    """The user-facing wording of a calibrated confidence, e.g. ``73 % chance within 5 m``.

    Below :data:`UNRELIABLE_BELOW`, or when the imagery is unlike the training imagery, the sentence says plainly
    that the prediction is unreliable and why. ``None`` means the checkpoint carries no calibration.
    """
    if confidence is None:
        text = "confidence not calibrated for this checkpoint (fit it with python -m geodistill calibrate)"
        return text + ("; unreliable: the imagery is unlike the training imagery" if unlike_training else "")
    text = f"{100 * confidence:.0f} % chance within {radius_m:g} m"
    if unlike_training:
        return text + "; unreliable: the imagery is unlike the training imagery"
    if confidence < UNRELIABLE_BELOW:
        return text + "; unreliable: low confidence"
    return text

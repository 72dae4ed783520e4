"""Load a localizer once and predict where a panorama was taken on a satellite tile.

``Localizer.from_checkpoint(path).predict(sample)`` returns a :class:`Prediction`: the camera pixel on the tile *as
given*, metres east/north of the tile centre, latitude/longitude when the tile is georeferenced, the heading when an
orientation model is loaded (3-DoF), the probability heatmap resampled onto the tile and a calibrated confidence
(the probability that the prediction is within 5 m, :mod:`geodistill.calibration`) when the checkpoint carries one.

A sample is a dict with the keys of :mod:`geodistill.keys` at any image size; it is resized to the model's input
(``pano_height`` x ``2 pano_height`` panorama, ``sat_size`` square tile) and the result is mapped back.

3-DoF: when the heading is estimated, the orientation model gives the heading of the panorama centre line first, the
panorama (and its visibility mask) is rolled back to north-up with :func:`geodistill.geometry.panorama.roll_panorama`
(fractional columns interpolated), then the localizer runs. Otherwise the sample's ``heading_gt`` is taken as known
(VIGOR panoramas are north-aligned, heading 0). Whether to estimate is the caller's ``estimate_heading`` argument;
its default (None) estimates exactly when an orientation model is loaded.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from geodistill import keys
from geodistill.calibration import Calibrator, confidence_sentence, heatmap_features, is_unreliable
from geodistill.checkpoint import (
    load_checkpoint,
    load_state_dict_checked,
    network_for_role,
    read_checkpoint_meta,
    resolve_checkpoint,
)
from geodistill.config import ExperimentConfig, OrientationConfig, without_pretrained
from geodistill.data.images import resize_column_mask, resize_image
from geodistill.errors import CheckpointError, GeoDistillError
from geodistill.geometry.fov import fov_column_mask
from geodistill.geometry.frames import resize_meters_per_pixel, resize_uv, xy_to_latlon
from geodistill.geometry.panorama import roll_panorama
from geodistill.models.azimuth_matching import clamp_to_prior, read_heading
from geodistill.models.factory import build_localizer, estimates_heading
from geodistill.models.orientation import OrientationEstimator
from geodistill.models.prediction import (FAITHFUL_CENTER_SHIFT, argmax_cells, cells_to_xy, fuse_location_prior,
                                          prob_on_tile, xy_to_tile_uv)

logger = logging.getLogger("geodistill.inference")

FovArg = float | None | Sequence[float | None]
LocationPriors = Sequence[tuple[float, float, float] | None] | None  # per sample (u, v, sigma_px) on the given tile
HEADING_CONFIDENCE_WINDOW_DEG = 5.0  # an orientation model's heading confidence: its probability within this


@dataclass
class Prediction:
    """One localization result, in the frame of the tile as the caller gave it.

    Attributes:
        uv: (2,) predicted camera pixel (u, v) on the given tile, continuous (pixel i covers [i, i+1)).
        xy_m: (2,) predicted camera position, metres east/north of the tile centre.
        latlon: (2,) float64 latitude/longitude, or None when the tile is not georeferenced.
        heading_deg: estimated heading of the panorama centre line (degrees clockwise from north, [0, 360)),
            or None when the heading was not estimated (no orientation model, or ``estimate_heading=False``).
        heading_confidence: how sure the heading estimate is, in [0, 1] (CCVPE: concentration of its heading
            distribution at the predicted location; orientation model: its probability within ±5° of the estimate),
            or None without an estimate.
        confidence: calibrated probability that the prediction is within 5 m of the truth, or None when the
            checkpoint carries no calibration (``python -m geodistill calibrate`` fits one).
        prob_on_tile: (S, S) float32 probability of the score cell under each tile pixel (bilinear; 0 outside the
            search region), S = the given tile side; None when the caller asked for no heatmap.
        scores: (H', W') cosine-similarity map of the localizer.
        meters_per_pixel: metres per pixel of the given tile.
        fov_mask: (Wp,) bool visible columns of the given panorama.
        uv_gt: (2,) true pixel on the given tile, or None without ground truth.
        xy_gt_m: (2,) true metres east/north, or None without ground truth.
        error_m: Euclidean error in metres, or None without ground truth.
        heading_gt_deg: the sample's heading, when it has one.
        peak_probability: the raw peak probability of the score map (not a calibrated probability).
        unlike_training: the best match is weaker than nearly every validation query's (out of distribution).
        calibration_features: the inputs of the confidence (:func:`geodistill.calibration.heatmap_features`).
        orientation_field: a CCVPE network's heading field, (H', W', 4) float32: per location cell its centre
            (u, v) on the given tile (pixels), the heading there (degrees clockwise from north) and the field's
            length (the concentration of its heading distribution, [0, 1]); None for other models.
    """

    uv: np.ndarray
    xy_m: np.ndarray
    latlon: np.ndarray | None
    heading_deg: float | None
    confidence: float | None
    prob_on_tile: np.ndarray | None
    scores: np.ndarray
    meters_per_pixel: float
    fov_mask: np.ndarray
    uv_gt: np.ndarray | None = None
    xy_gt_m: np.ndarray | None = None
    error_m: float | None = None
    heading_gt_deg: float | None = None
    heading_confidence: float | None = None
    peak_probability: float | None = None
    unlike_training: bool = False
    calibration_features: dict[str, float] | None = None
    orientation_field: np.ndarray | None = None

    @property
    def unreliable(self) -> bool:
        """Low calibrated confidence, or imagery unlike the training imagery."""
        return is_unreliable(self.confidence, self.unlike_training)

    @property
    def confidence_text(self) -> str:
        """The confidence as the user reads it, e.g. ``73 % chance within 5 m`` (plus why it is unreliable)."""
        return confidence_sentence(self.confidence, self.unlike_training)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no heatmaps)."""

        def listed(value):
            return None if value is None else [float(v) for v in value]

        return {
            "u": float(self.uv[0]),
            "v": float(self.uv[1]),
            "east_m": float(self.xy_m[0]),
            "north_m": float(self.xy_m[1]),
            "lat": None if self.latlon is None else float(self.latlon[0]),
            "lon": None if self.latlon is None else float(self.latlon[1]),
            "heading_deg": self.heading_deg,
            "heading_confidence": self.heading_confidence,
            "confidence": self.confidence,
            "confidence_meaning": self.confidence_text,
            "unreliable": self.unreliable,
            "unlike_training": self.unlike_training,
            "peak_probability": self.peak_probability,
            "meters_per_pixel": self.meters_per_pixel,
            "visible_fraction": float(self.fov_mask.mean()) if self.fov_mask.size else 1.0,
            "uv_gt": listed(self.uv_gt),
            "error_m": self.error_m,
        }


def _pick(value: FovArg, index: int, count: int):
    if isinstance(value, (list, tuple, np.ndarray, torch.Tensor)):
        if len(value) != count:
            raise ValueError(f"expected {count} per-sample values, got {len(value)}")
        item = value[index]
        return None if item is None else float(item)
    return None if value is None else float(value)


def _as_tensor(value, dtype=torch.float32) -> torch.Tensor:
    return value.to(dtype) if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value), dtype=dtype)


@dataclass
class _Query:
    """A sample brought to the model's input size."""

    pano: torch.Tensor          # 3,Hm,Wm (masked, not yet rolled)
    sat: torch.Tensor           # 3,Sm,Sm
    fov_mask: torch.Tensor      # Wm bool
    fov_mask_given: np.ndarray  # W0 bool
    mpp_model: float
    mpp_given: float
    tile_size: int
    camera_height_m: float
    known_heading_deg: float
    latlon_sat: np.ndarray | None
    uv_gt: np.ndarray | None
    xy_gt: np.ndarray | None
    heading_gt: float | None


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto``/None -> CUDA when available, else CPU; a clear error for an unknown or absent device."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise GeoDistillError(f"device {device!r} is not a device (use auto, cpu, cuda or cuda:N)") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise GeoDistillError(f"device {device!r} asked for, but no CUDA device is available; use cpu or auto")
    return resolved


class Localizer:
    """A localizer network ready for inference (eval mode, no gradients), optionally with an orientation model.

    Build it with :meth:`from_checkpoint` or :meth:`from_config`, or wrap a network already in memory (the engine's
    validation) with the constructor. ``predict``/``predict_batch`` accept samples of any size.
    """

    def __init__(self, model: torch.nn.Module, config: ExperimentConfig, *, device: str | torch.device = "cpu",
                 role: str = "weak", source: str = "", orientation: torch.nn.Module | None = None,
                 orientation_config: OrientationConfig | None = None, orientation_source: str = "",
                 calibrator: Calibrator | None = None) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.config = config
        self.role = role
        self.source = source
        self.orientation = orientation.to(self.device).eval() if orientation is not None else None
        self.orientation_config = orientation_config
        self.orientation_source = orientation_source
        self.calibrator = calibrator

    @property
    def _center_shift(self) -> float:
        """Placement-centre shift of the metric conversion (0 exact; the reference's 0.5 when faithful)."""
        faithful = getattr(self.config.model, "metric_conversion", "exact") == "faithful"
        return FAITHFUL_CENTER_SHIFT if faithful else 0.0

    @property
    def pano_height(self) -> int:
        return int(self.config.data.pano_height)

    @property
    def sat_size(self) -> int:
        return int(self.config.data.sat_size)

    @property
    def estimates_own_heading(self) -> bool:
        """Whether the localizer network reads the heading itself, over the full circle (the CCVPE base)."""
        return estimates_heading(self.model)

    @property
    def orientation_range_deg(self) -> float | None:
        """Half range of headings this localizer can estimate (45 or 180), None when it cannot estimate one."""
        if self.estimates_own_heading:
            return 180.0
        return None if self.orientation_config is None else float(self.orientation_config.range_deg)

    @property
    def can_estimate_heading(self) -> bool:
        """An orientation model is loaded, or the network estimates its own heading (CCVPE)."""
        return self.orientation is not None or self.estimates_own_heading

    @classmethod
    def from_config(cls, config: ExperimentConfig, device: str | torch.device = "cpu") -> "Localizer":
        """A localizer without a checkpoint: pretrained backbone (or random, if the config allows it)."""
        return cls(build_localizer(config.model), config, device=device, role="untrained", source="(no checkpoint)")

    @classmethod
    def from_checkpoint(cls, path: str | Path, role: str | None = None, device: str | torch.device = "cpu",
                        orientation_checkpoint: str | Path | None = None,
                        with_calibration: bool = True) -> "Localizer":
        """Load a localizer checkpoint (a run folder means ``<run>/best``).

        Args:
            path: checkpoint folder or run folder.
            role: ``student`` or ``teacher`` for a distillation checkpoint (default: its deployed network).
            device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
            orientation_checkpoint: optional orientation-estimator checkpoint for 3-DoF inference.
            with_calibration: read the stored confidence calibration (False: ignore it, as when fitting a new one).

        Raises:
            CheckpointError: missing/damaged checkpoint, wrong task or role, architecture mismatch.
        """
        folder = resolve_checkpoint(path)
        checkpoint = load_checkpoint(folder)
        task = checkpoint.task
        if task == "orientation":
            raise CheckpointError(f"{folder} is an orientation-estimator checkpoint; pass it as "
                                  "--orientation-checkpoint together with a localizer checkpoint")
        if role is not None and task != "distill" and role not in ("weak", task):
            raise CheckpointError(f"--role {role} needs a distillation checkpoint; {folder} holds a {task} model")
        chosen = role or (checkpoint.meta.get("deploy", "student") if task == "distill" else
                          "supervised" if task == "supervised" else "weak")
        state_dict = network_for_role(checkpoint, chosen)
        config = checkpoint.config
        model = build_localizer(without_pretrained(config).model)
        load_state_dict_checked(model, state_dict, folder / "weights.safetensors")
        orientation = orientation_config = None
        orientation_source = ""
        if config.model.architecture == "ccvpe":
            orientation_source = f"the CCVPE model {folder}"
            if orientation_checkpoint is not None:
                logger.warning("%s estimates its own heading; the orientation checkpoint %s is not used", folder,
                               orientation_checkpoint)
        elif orientation_checkpoint is not None:
            orientation, orientation_config, orientation_source = load_orientation(orientation_checkpoint)
        logger.info("loaded %s localizer from %s", chosen, folder)
        return cls(model, config, device=device, role=chosen, source=str(folder), orientation=orientation,
                   orientation_config=orientation_config, orientation_source=orientation_source,
                   calibrator=stored_calibrator(checkpoint.meta, chosen, folder) if with_calibration else None)

    def predict(self, sample: dict, fov_deg: float | None = None, fov_center_deg: float = 0.0,
                with_heatmap: bool = True, estimate_heading: bool | None = None,
                heading_prior_deg: float | None = None, heading_range_deg: float | None = None) -> Prediction:
        """Localize one sample. ``fov_deg`` limits the view to a window centred ``fov_center_deg`` from the centre
        line: the image outside it is zeroed and the mask is passed to the localizer. ``estimate_heading`` and the
        heading prior as in :meth:`predict_batch`."""
        return self.predict_batch([sample], fov_deg, fov_center_deg, with_heatmap, estimate_heading,
                                  heading_prior_deg, heading_range_deg)[0]

    @torch.no_grad()
    def predict_batch(self, samples: Sequence[dict], fov_deg: FovArg = None, fov_center_deg: FovArg = 0.0,
                      with_heatmap: bool = True, estimate_heading: bool | None = None,
                      heading_prior_deg: FovArg = None, heading_range_deg: FovArg = None,
                      location_prior: LocationPriors = None) -> list[Prediction]:
        """Localize several samples at once (FoV and prior arguments: one value for all, or one per sample).

        Args:
            estimate_heading: True estimates the heading (3-DoF): with an orientation model, it runs and each
                panorama is rolled back to north before localizing; a CCVPE network reads the heading at its
                predicted location. False takes each sample's ``heading_gt`` as known (0 when absent) and never
                estimates (the ``aligned`` protocol). None, the default, estimates exactly when the localizer can.
            heading_prior_deg: a prior heading (degrees clockwise from north), or None (the full circle).
            heading_range_deg: half range of the prior in degrees (None or 0: the prior is the heading). The
                estimate is restricted to prior ± range: a CCVPE network searches only those headings, an
                orientation model's estimate is clamped into the window.
            location_prior: per sample ``(u, v, sigma_px)`` or None: a Gaussian position prior (e.g. GPS) centred
                at pixel (u, v) of the tile *as given*, standard deviation ``sigma_px`` pixels of that tile. It is
                multiplied into the model's location probability and renormalised; the position, heatmap and
                calibrated confidence are those of the fused distribution (a CCVPE heading is read at the fused
                position). None for a sample (or for all) leaves it as the model says.

        Raises:
            CheckpointError: ``estimate_heading=True`` for a localizer that cannot estimate a heading.
        """
        if estimate_heading and not self.can_estimate_heading:
            raise CheckpointError("estimate_heading=True needs an orientation model: load one with "
                                  "orientation_checkpoint (train one with train.task=orientation), or use a CCVPE "
                                  "checkpoint, which estimates its own heading")
        if not samples:
            return []
        if estimate_heading is None:
            estimate_heading = self.can_estimate_heading
        count = len(samples)
        queries = [self._prepare(sample, _pick(fov_deg, i, count), _pick(fov_center_deg, i, count) or 0.0)
                   for i, sample in enumerate(samples)]
        priors = [_pick(heading_prior_deg, i, count) for i in range(count)]
        ranges = [_pick(heading_range_deg, i, count) or 0.0 for i in range(count)]
        if any(not 0.0 <= spread <= 180.0 for spread in ranges):
            raise ValueError(f"the heading range must lie in [0, 180] degrees, got {ranges}")
        pano = torch.stack([q.pano for q in queries]).to(self.device)           # B,3,Hm,Wm
        fov_mask = torch.stack([q.fov_mask for q in queries]).to(self.device)   # B,Wm
        sat = torch.stack([q.sat for q in queries]).to(self.device)             # B,3,Sm,Sm
        headings = heading_confidence = None
        if estimate_heading and not self.estimates_own_heading:
            headings, heading_confidence = self._estimate_headings(pano, sat, priors, ranges)
        if not self.estimates_own_heading:
            align_deg = headings.tolist() if headings is not None else [q.known_heading_deg for q in queries]
            pano, fov_mask = self._roll_to_north(pano, fov_mask, align_deg)
        batch = {
            keys.PANO: pano,
            keys.SAT: sat,
            keys.METERS_PER_PIXEL: torch.tensor([q.mpp_model for q in queries], dtype=torch.float32, device=self.device),
            keys.CAMERA_HEIGHT_M: torch.tensor([q.camera_height_m for q in queries], dtype=torch.float32,
                                               device=self.device),
            keys.FOV_MASK: fov_mask,
        }
        if self.estimates_own_heading:
            batch.update(self._prior_inputs(queries, estimate_heading, priors, ranges))
        output = self._forward(batch, None if bool(fov_mask.all()) else fov_mask)
        if location_prior is not None:
            output = self._fuse_location_prior(output, batch, queries, location_prior)
        if self.estimates_own_heading and estimate_heading:
            headings, heading_confidence = output[keys.HEADING], output[keys.HEADING_CONFIDENCE]
        return [self._to_prediction(q, output, i, headings, with_heatmap, heading_confidence)
                for i, q in enumerate(queries)]

    def _fuse_location_prior(self, output: dict, batch: dict, queries: list["_Query"],
                             location_prior: LocationPriors) -> dict:
        """``output`` with its position outputs replaced by those of the model probability times each sample's
        Gaussian prior (samples without a prior get an infinite sigma: unchanged)."""
        if len(location_prior) != len(queries):
            raise ValueError(f"expected {len(queries)} location priors, got {len(location_prior)}")
        prior_xy, sigma_m = [], []
        for query, prior in zip(queries, location_prior):
            if prior is None:
                prior_xy.append((0.0, 0.0))
                sigma_m.append(math.inf)
                continue
            u, v, sigma_px = (float(value) for value in prior)
            if not sigma_px > 0:
                raise ValueError(f"a location prior's sigma must be positive, got {sigma_px} px")
            half = query.tile_size / 2.0
            prior_xy.append(((u - half) * query.mpp_given, (half - v) * query.mpp_given))
            sigma_m.append(sigma_px * query.mpp_given)
        cell_m = _as_tensor(output[keys.CELL_M]).to(self.device).reshape(-1).expand(len(queries))
        shift = self._center_shift
        fused = fuse_location_prior(output[keys.LOG_PROBS], cell_m, batch[keys.METERS_PER_PIXEL], self.sat_size,
                                    torch.tensor(prior_xy, dtype=torch.float64, device=self.device),
                                    torch.tensor(sigma_m, dtype=torch.float64, device=self.device),
                                    bool(getattr(self.config.model, "subcell_refine", False)), shift)
        output = {**output, **fused}
        if self.estimates_own_heading and keys.ORIENTATION_FIELD in output:
            prior, spread = batch.get(keys.HEADING_PRIOR), batch.get(keys.HEADING_RANGE)
            output[keys.HEADING], _ = read_heading(output[keys.ORIENTATION_FIELD],
                                                   argmax_cells(fused[keys.LOG_PROBS].detach()), prior, spread)
        return output

    def _prior_inputs(self, queries: list["_Query"], estimate_heading: bool, priors: list[float | None],
                      ranges: list[float]) -> dict:
        """The heading-prior batch entries of a CCVPE network: the known headings (range 0) when not estimating,
        else each prior ± range (a sample without a prior searches the full circle)."""
        if not estimate_heading:
            prior = [q.known_heading_deg for q in queries]
            spread = [0.0] * len(queries)
        elif all(p is None for p in priors):
            return {}
        else:
            prior = [0.0 if p is None else p for p in priors]
            spread = [180.0 if p is None else r for p, r in zip(priors, ranges)]
        return {keys.HEADING_PRIOR: torch.tensor(prior, dtype=torch.float32, device=self.device),
                keys.HEADING_RANGE: torch.tensor(spread, dtype=torch.float32, device=self.device)}

    def _forward(self, batch: dict, fov_mask: torch.Tensor | None) -> dict:
        was_training = self.model.training
        self.model.eval()
        try:
            return self.model(batch, fov_mask=fov_mask)
        finally:
            self.model.train(was_training)

    def _prepare(self, sample: dict, fov_deg: float | None, fov_center_deg: float) -> _Query:
        pano = _as_tensor(sample[keys.PANO])
        sat = _as_tensor(sample[keys.SAT])
        if pano.ndim != 3 or pano.shape[0] != 3 or sat.ndim != 3 or sat.shape[0] != 3 or sat.shape[1] != sat.shape[2]:
            raise ValueError(f"expected pano (3,H,W) and a square sat (3,S,S), got {tuple(pano.shape)} and "
                             f"{tuple(sat.shape)}")
        width_given, tile_size = pano.shape[-1], sat.shape[-1]
        given_mask = sample.get(keys.FOV_MASK)
        given_mask = (torch.ones(width_given, dtype=torch.bool) if given_mask is None
                      else _as_tensor(given_mask, torch.bool).view(-1))
        if given_mask.shape[0] != width_given:
            raise ValueError(f"fov_mask has {given_mask.shape[0]} columns, the panorama {width_given}")
        if fov_deg is not None:
            given_mask = given_mask & fov_column_mask(width_given, fov_deg, fov_center_deg).view(-1).cpu()
        height, width = self.pano_height, 2 * self.pano_height
        model_mask = resize_column_mask(given_mask, width)
        pano_model = resize_image(pano * given_mask.to(pano.dtype), (height, width)) * model_mask.to(pano.dtype)
        mpp_given = float(_as_tensor(sample[keys.METERS_PER_PIXEL]))
        has_gt = bool(sample.get(keys.HAS_GT, keys.UV_GT in sample))
        heading_gt = _finite_or_none(sample.get(keys.HEADING_GT))
        return _Query(
            pano=pano_model,
            sat=resize_image(sat, (self.sat_size, self.sat_size)),
            fov_mask=model_mask,
            fov_mask_given=given_mask.numpy(),
            mpp_model=float(resize_meters_per_pixel(mpp_given, tile_size, self.sat_size)),
            mpp_given=mpp_given,
            tile_size=tile_size,
            camera_height_m=_finite_or_none(sample.get(keys.CAMERA_HEIGHT_M)) or self.config.model.camera_height_m,
            known_heading_deg=heading_gt or 0.0,
            latlon_sat=_latlon_or_none(sample.get(keys.LATLON_SAT)),
            uv_gt=_as_numpy(sample[keys.UV_GT]) if has_gt and keys.UV_GT in sample else None,
            xy_gt=_as_numpy(sample[keys.XY_GT]) if has_gt and keys.XY_GT in sample else None,
            heading_gt=heading_gt,
        )

    def _estimate_headings(self, pano: torch.Tensor, sat: torch.Tensor, priors: list[float | None],
                           ranges: list[float]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B,) headings in degrees from the orientation model, clamped into each prior's window, and (B,) the
        probability the model gives to headings within ±5° of its estimate (None when it gives no class logits)."""
        output = self.orientation({keys.PANO: pano, keys.SAT: sat})
        headings = output[keys.HEADING].detach().to(torch.float32).view(-1)
        logits = output.get(keys.HEADING_LOGITS)
        confidence = None
        if logits is not None:
            confidence = _mass_near_peak(logits.detach().float().softmax(dim=-1), HEADING_CONFIDENCE_WINDOW_DEG
                                         / float(self.orientation_config.bin_deg),
                                         circular=float(self.orientation_config.range_deg) >= 180.0)
        for index, (prior, spread) in enumerate(zip(priors, ranges)):
            if prior is not None:
                headings[index] = clamp_to_prior(headings[index: index + 1], torch.tensor([prior]),
                                                 torch.tensor([spread]))[0]
        return headings, confidence

    def _roll_to_north(self, pano: torch.Tensor, fov_mask: torch.Tensor, headings_deg: list[float]):
        if all(abs(h) < 1e-6 for h in headings_deg):
            return pano, fov_mask
        delta_deg = -torch.tensor(headings_deg, dtype=torch.float64, device=pano.device)
        rolled_mask = roll_panorama(fov_mask.to(torch.float32)[:, None, None, :], delta_deg)[:, 0, 0] > 0.5  # B,W
        return roll_panorama(pano, delta_deg), rolled_mask

    def _to_prediction(self, query: _Query, output: dict, index: int, headings: torch.Tensor | None,
                       with_heatmap: bool, heading_confidence: torch.Tensor | None = None) -> Prediction:
        xy = output[keys.XY_MAX][index].detach().double().cpu().numpy()
        uv_model = output[keys.UV_MAX][index].detach().double().cpu()
        uv = np.asarray(resize_uv(uv_model, self.sat_size, query.tile_size), dtype=np.float64)
        latlon = None
        if query.latlon_sat is not None:
            latlon = np.asarray(xy_to_latlon(xy, query.latlon_sat), dtype=np.float64)
        prob = output[keys.PROB][index].detach()
        scores = output[keys.SCORES][index].detach().float().cpu().numpy()
        cell_m = _as_tensor(output[keys.CELL_M]).view(-1)
        cell_m = cell_m[index if cell_m.numel() > 1 else 0]
        features = heatmap_features(prob.float().cpu().numpy(), scores, float(cell_m),
                                    float(query.fov_mask.float().mean()))
        confidence = unlike = None
        if self.calibrator is not None:
            confidence, unlike = self.calibrator.confidence(features), self.calibrator.unlike_training(features)
        heatmap = None
        if with_heatmap:
            heatmap = prob_on_tile(prob[None].float(), cell_m, query.mpp_given, query.tile_size, self._center_shift)
            heatmap = heatmap[0].cpu().numpy().astype(np.float32)
        error = None
        if query.xy_gt is not None:
            error = float(np.hypot(*(xy - query.xy_gt)))
        heading = None
        if headings is not None:
            heading = float(headings[index]) % 360.0
        return Prediction(
            uv=uv, xy_m=xy, latlon=latlon, heading_deg=heading,
            confidence=confidence,
            prob_on_tile=heatmap,
            scores=scores,
            meters_per_pixel=query.mpp_given,
            fov_mask=query.fov_mask_given,
            uv_gt=query.uv_gt, xy_gt_m=query.xy_gt, error_m=error, heading_gt_deg=query.heading_gt,
            heading_confidence=None if heading_confidence is None else float(heading_confidence[index]),
            peak_probability=float(output[keys.CONFIDENCE][index]), unlike_training=bool(unlike),
            calibration_features=features,
            orientation_field=self._orientation_field(query, output, index, cell_m),
        )

    def _orientation_field(self, query: _Query, output: dict, index: int, cell_m: torch.Tensor) -> np.ndarray | None:
        """:attr:`Prediction.orientation_field` of one sample (None without a heading field)."""
        field = output.get(keys.ORIENTATION_FIELD)
        if field is None:
            return None
        vectors = field[index].detach().double().cpu()                                      # 2,H',W'
        height, width = vectors.shape[-2:]
        rows, cols = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                                    torch.arange(width, dtype=torch.float64), indexing="ij")
        rowcol = torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=-1)
        xy = cells_to_xy(rowcol, (height, width), cell_m.double().cpu().reshape(1), self._center_shift)
        uv = xy_to_tile_uv(xy, query.tile_size, torch.tensor([query.mpp_given], dtype=torch.float64))
        heading = torch.remainder(torch.rad2deg(torch.atan2(vectors[1], vectors[0])), 360.0).reshape(-1)
        length = vectors.norm(dim=0).reshape(-1)
        return torch.cat([uv, heading[:, None], length[:, None]], dim=1).view(height, width, 4).float().numpy()


class TileCentreBaseline:
    """The trivial baseline of the results table: always predicts the tile centre (no model)."""

    role = "baseline"
    source = "tile centre"
    orientation = None
    orientation_range_deg = None
    orientation_source = ""

    def __init__(self, pano_height: int = 320, sat_size: int = 512) -> None:
        self.pano_height = pano_height
        self.sat_size = sat_size

    def predict(self, sample: dict, fov_deg: float | None = None, fov_center_deg: float = 0.0,
                with_heatmap: bool = True, estimate_heading: bool | None = None,
                heading_prior_deg: float | None = None, heading_range_deg: float | None = None) -> Prediction:
        return self.predict_batch([sample], fov_deg, fov_center_deg, with_heatmap, estimate_heading)[0]

    def predict_batch(self, samples: Sequence[dict], fov_deg: FovArg = None, fov_center_deg: FovArg = 0.0,
                      with_heatmap: bool = True, estimate_heading: bool | None = None,
                      heading_prior_deg: FovArg = None, heading_range_deg: FovArg = None,
                      location_prior: LocationPriors = None) -> list[Prediction]:
        """The tile centre for every sample; the FoV, heading and location-prior arguments change nothing (no model
        looks)."""
        predictions = []
        for sample in samples:
            tile_size = int(_as_tensor(sample[keys.SAT]).shape[-1])
            width = int(_as_tensor(sample[keys.PANO]).shape[-1])
            has_gt = bool(sample.get(keys.HAS_GT, keys.UV_GT in sample))
            xy_gt = _as_numpy(sample[keys.XY_GT]) if has_gt and keys.XY_GT in sample else None
            latlon_sat = _latlon_or_none(sample.get(keys.LATLON_SAT))
            heatmap = _centre_heatmap(tile_size) if with_heatmap else None
            predictions.append(Prediction(
                uv=np.full(2, tile_size / 2, dtype=np.float64), xy_m=np.zeros(2), heading_deg=None,
                latlon=None if latlon_sat is None else np.asarray(xy_to_latlon(np.zeros(2), latlon_sat), np.float64),
                confidence=None, prob_on_tile=heatmap, scores=np.zeros((1, 1), np.float32),
                meters_per_pixel=float(_as_tensor(sample[keys.METERS_PER_PIXEL])), fov_mask=np.ones(width, bool),
                uv_gt=_as_numpy(sample[keys.UV_GT]) if has_gt and keys.UV_GT in sample else None, xy_gt_m=xy_gt,
                error_m=None if xy_gt is None else float(np.hypot(*xy_gt)),
                heading_gt_deg=_finite_or_none(sample.get(keys.HEADING_GT)),
            ))
        return predictions


def _centre_heatmap(tile_size: int) -> np.ndarray:
    """(S, S) probability 1 at the tile centre S/2: one pixel for odd S, shared by the four pixels meeting there for
    even S; it sums to 1."""
    heatmap = np.zeros((tile_size, tile_size), np.float32)
    first = tile_size // 2 - 1 + tile_size % 2
    heatmap[first: tile_size // 2 + 1, first: tile_size // 2 + 1] = 1.0
    return heatmap / heatmap.sum()


def _mass_near_peak(prob: torch.Tensor, half_width_classes: float, circular: bool) -> torch.Tensor:
    """(B,) probability within ``half_width_classes`` classes of each row's most likely class (classes wrap around
    when ``circular``)."""
    classes = prob.shape[-1]
    offsets = (torch.arange(classes, device=prob.device).view(1, -1) - prob.argmax(dim=-1, keepdim=True)).abs()
    distance = torch.minimum(offsets, classes - offsets) if circular else offsets
    return (prob * (distance <= half_width_classes)).sum(dim=-1)


def checkpoint_estimates_heading(path: str | Path) -> bool:
    """Whether a localizer checkpoint (or run folder) holds a network that estimates its own heading (CCVPE),
    read from its ``config.json`` without loading weights."""
    document = read_checkpoint_meta(resolve_checkpoint(path))
    model = document["config"].get("model", {}) if isinstance(document["config"], dict) else {}
    return model.get("architecture", "g2sweakly") == "ccvpe"


def load_orientation(path: str | Path) -> tuple[torch.nn.Module, OrientationConfig, str]:
    """Load an orientation-estimator checkpoint -> (model in eval mode, its config, folder)."""
    folder = resolve_checkpoint(path)
    checkpoint = load_checkpoint(folder)
    if checkpoint.task != "orientation":
        raise CheckpointError(f"{folder} holds a {checkpoint.task} model, not an orientation estimator "
                              "(train one with train.task=orientation)")
    config = checkpoint.config
    model = OrientationEstimator(without_pretrained(config).orientation)
    load_state_dict_checked(model, network_for_role(checkpoint), folder / "weights.safetensors")
    return model.eval(), config.orientation, str(folder)


def stored_calibrator(meta: dict, role: str, source: str | Path) -> Calibrator | None:
    """The confidence calibration stored in a checkpoint's ``config.json`` for ``role``, None when there is none."""
    stored = (meta.get("calibration") or {}).get(role)
    if stored is None:
        logger.info("%s has no confidence calibration for the %s network; confidence is not reported", source, role)
        return None
    return Calibrator.from_dict(stored, f"{Path(source) / 'config.json'} (calibration of the {role} network)")


def _finite_or_none(value) -> float | None:
    if value is None:
        return None
    number = float(_as_tensor(value).view(-1)[0])
    return number if math.isfinite(number) else None


def _latlon_or_none(value) -> np.ndarray | None:
    if value is None:
        return None
    latlon = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64)
    return latlon if latlon.shape == (2,) and np.isfinite(latlon).all() else None


def _as_numpy(value) -> np.ndarray:
    return np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64)


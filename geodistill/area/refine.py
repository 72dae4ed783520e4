"""Refine the GPS positions of a folder of panoramas on an orthophoto: ``python -m geodistill refine``.

For each panorama: its prior (:mod:`geodistill.area.priors`), a true-north-up tile of the orthophoto around it at the
model's scale (:mod:`geodistill.area.scale`), the panorama decoded at the model's size (turned to north by its prior
heading when it has one), then the localizer with the GPS prior fused into its heatmap (a Gaussian of
``prior_sigma_m``). Results go to a journal as they come and to the output file (GeoJSON or CSV,
:mod:`geodistill.area.results`) every few batches and at the end, atomically; a rerun with the same settings skips
the panoramas done (a panorama skipped for a bad image is tried again). ``refine_area`` is the API the app and the command call.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from pyproj import Geod
from tqdm import tqdm

from geodistill import __version__
from geodistill.area.orthophoto import Orthophoto, open_orthophoto
from geodistill.area.priors import PanoPrior, read_priors
from geodistill.area.results import Journal, empty_record, journal_path, output_format, write_results
from geodistill.area.scale import TilePlan, plan_tiles
from geodistill.data.collate import assemble_sample
from geodistill.data.images import read_rgb_resized
from geodistill.errors import DataError
from geodistill.geometry.panorama import roll_panorama
from geodistill.inference import Localizer, Prediction

logger = logging.getLogger("geodistill.area.refine")

GEOD = Geod(ellps="WGS84")
HEADING_PRIOR_RANGE_DEG = 30.0  # a prior heading (GPano, EXIF, CSV) is trusted to within this
UNCERTAINTY_MASS = 0.9          # the uncertainty radius holds this fraction of the fused heatmap
MIN_COVERAGE = 0.75             # a tile less covered by the orthophoto than this is flagged low confidence
WRITE_EVERY = 64                # the output file is rewritten after this many new panoramas (and at the end)

ProgressFn = Callable[[int, int], None]
StopFn = Callable[[], bool]


@dataclass
class RefineSummary:
    """What a run did. ``refined`` + ``outside`` + ``skipped`` = the panoramas written so far."""

    out_path: Path
    journal_path: Path
    total: int
    refined: int = 0
    outside: int = 0
    skipped: int = 0
    low_confidence: int = 0
    already_done: int = 0
    stopped: bool = False
    seconds: float = 0.0
    plan: TilePlan | None = None
    records: list[dict] = field(default_factory=list, repr=False)

    @property
    def written(self) -> int:
        return self.refined + self.outside + self.skipped

    def message(self) -> str:
        state = "stopped" if self.stopped else "done"
        return (f"{state}: {self.written} of {self.total} panoramas in {self.out_path} ({self.refined} refined, "
                f"{self.low_confidence} of them low confidence; {self.outside} outside the orthophoto; "
                f"{self.skipped} skipped; {self.already_done} from an earlier run)")


def mass_radius(prob: np.ndarray, uv: np.ndarray, meters_per_pixel: float, fraction: float = UNCERTAINTY_MASS) -> float:
    """Radius in metres around ``uv`` (continuous pixel) holding ``fraction`` of a (S, S) heatmap's mass."""
    total = float(prob.sum())
    if total <= 0:
        return math.nan
    centres = np.arange(prob.shape[0]) + 0.5
    distance = np.hypot(centres[None, :] - uv[0], centres[:, None] - uv[1]).ravel()
    order = np.argsort(distance)
    cumulative = np.cumsum(prob.ravel()[order]) / total
    index = min(int(np.searchsorted(cumulative, fraction)), order.size - 1)
    return float(distance[order[index]] * meters_per_pixel)


def _tile_tensor(tile: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(tile).permute(2, 0, 1).float().div_(255.0)


class _Refiner:
    """One run's fixed parts: the orthophoto, the localizer and the tile plan."""

    def __init__(self, ortho: Orthophoto, localizer: Localizer, plan: TilePlan, prior_sigma_m: float) -> None:
        self.ortho, self.localizer, self.plan, self.prior_sigma_m = ortho, localizer, plan, prior_sigma_m

    def base_record(self, prior: PanoPrior) -> dict:
        x, y = self.ortho.to_native(prior.lat, prior.lon)
        return empty_record(prior.name, "refined", prior_lat=prior.lat, prior_lon=prior.lon, prior_x=x, prior_y=y,
                            crs=self.ortho.crs)

    def refine(self, priors: list[PanoPrior]) -> list[dict]:
        """Records of a batch of panoramas, in their order."""
        records: dict[str, dict] = {}
        samples, queued = [], []
        size, mpp = self.plan.size_px, self.plan.meters_per_pixel
        height = self.localizer.pano_height
        for prior in priors:
            record = records[prior.name] = self.base_record(prior)
            if not self.ortho.contains(prior.lat, prior.lon):
                record.update(status="outside", outside_orthophoto=True,
                              reason=f"{prior.name}: its GPS position ({prior.lat:.6f}, {prior.lon:.6f}) lies outside "
                                     f"the orthophoto {self.ortho.path.name}")
                continue
            try:
                pano, _ = read_rgb_resized(prior.path, (height, 2 * height))
            except DataError as error:
                record.update(status="skipped", reason=str(error))
                continue
            if prior.heading_deg is not None:
                pano = roll_panorama(pano[None], torch.tensor([-prior.heading_deg], dtype=torch.float64))[0]
            tile, valid = self.ortho.cut_tile(prior.lat, prior.lon, size, mpp, return_valid=True)
            record["coverage"] = float(valid.mean())
            samples.append(assemble_sample(pano, _tile_tensor(tile), mpp, None, None, (prior.lat, prior.lon), None))
            queued.append(prior)
        if samples:
            with_prior = [p.heading_deg is not None for p in queued]
            can_estimate = self.localizer.can_estimate_heading
            predictions = self.localizer.predict_batch(
                samples, estimate_heading=can_estimate,
                heading_prior_deg=[0.0 if known else None for known in with_prior] if can_estimate else None,
                heading_range_deg=[HEADING_PRIOR_RANGE_DEG if known else None for known in with_prior]
                if can_estimate else None,
                location_prior=[(size / 2.0, size / 2.0, self.prior_sigma_m / mpp)] * len(samples))
            for prior, prediction in zip(queued, predictions):
                records[prior.name].update(self._refined_fields(prior, prediction, records[prior.name]["coverage"]))
        return [records[p.name] for p in priors]

    def _refined_fields(self, prior: PanoPrior, prediction: Prediction, coverage: float) -> dict:
        east, north = (float(v) for v in prediction.xy_m)
        shift = math.hypot(east, north)
        lon, lat, _ = GEOD.fwd(prior.lon, prior.lat, math.degrees(math.atan2(east, north)), shift)
        x, y = self.ortho.to_native(lat, lon)
        if prediction.heading_deg is not None:
            heading = ((prior.heading_deg or 0.0) + prediction.heading_deg) % 360.0
            source = "prior+model" if prior.heading_deg is not None else "model"
        else:
            heading, source = prior.heading_deg, "prior" if prior.heading_deg is not None else "assumed north"
        return dict(
            refined_lat=float(lat), refined_lon=float(lon), refined_x=x, refined_y=y, shift_m=shift,
            heading_deg=heading, heading_source=source, confidence=prediction.confidence,
            confidence_text=prediction.confidence_text,
            uncertainty_m=mass_radius(prediction.prob_on_tile, prediction.uv, prediction.meters_per_pixel),
            low_confidence=bool(prediction.unreliable or coverage < MIN_COVERAGE),
        )


def run_settings(ortho: Orthophoto, localizer: Localizer, plan: TilePlan, prior_sigma_m: float,
                 gps_csv: str | os.PathLike | None) -> dict:
    """What the results depend on: a rerun resumes only when these are unchanged."""
    return {"geodistill_version": __version__, "ortho": str(Path(ortho.path).resolve()), "crs": ortho.crs,
            "checkpoint": str(localizer.source), "role": localizer.role,
            "orientation": str(localizer.orientation_source or ""), "prior_sigma_m": float(prior_sigma_m),
            "tile_px": plan.size_px, "tile_mpp": round(plan.meters_per_pixel, 9),
            "gps_csv": None if gps_csv is None else str(Path(gps_csv).resolve())}


def refine_area(ortho_path: str | os.PathLike, pano_dir: str | os.PathLike, out_path: str | os.PathLike, *,
                localizer: Localizer, gps_csv: str | os.PathLike | None = None, prior_sigma_m: float = 10.0,
                batch_size: int = 8, restart: bool = False, zoom: int | None = None,
                progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                show_progress: bool = False) -> RefineSummary:
    """Refine every panorama of ``pano_dir`` on the orthophoto and write ``out_path`` (.geojson/.json or .csv).

    Args:
        ortho_path: a GeoTIFF (any CRS) or a folder of XYZ tiles (``zoom``: its level, default the deepest).
        pano_dir: folder of 2:1 panoramas with EXIF GPS, or listed in ``gps_csv`` (``name,lat,lon[,heading]``).
        localizer: a loaded :class:`~geodistill.inference.Localizer` (with an orientation model for headings).
        prior_sigma_m: standard deviation of the GPS error in metres (the Gaussian fused into the heatmap).
        restart: discard the journal of an earlier run instead of resuming it.
        progress: called with (panoramas written, total) after every batch.
        should_stop: polled before every batch; True stops the run cleanly (the output holds what is done).
        show_progress: a tqdm progress bar on stderr.

    Raises:
        OrthophotoError: unreadable, un-georeferenced or too coarse orthophoto.
        DataError / ResultsError: missing panorama folder, bad CSV header, output suffix, journal of other settings.
    """
    started = time.perf_counter()
    out_path = Path(out_path)
    output_format(out_path)
    if not prior_sigma_m > 0:
        raise DataError(f"the prior sigma must be a positive number of metres, got {prior_sigma_m}")
    with open_orthophoto(ortho_path, zoom) as ortho:
        plan = plan_tiles(localizer, prior_sigma_m)
        ortho.check_resolution(plan.model_mpp)
        priors, skipped = read_priors(pano_dir, gps_csv)
        settings = run_settings(ortho, localizer, plan, prior_sigma_m, gps_csv)
        journal = Journal(out_path, settings, restart)
        skipped_records = {s.name: empty_record(s.name, "skipped", reason=s.reason) for s in skipped}
        todo = [p for p in priors if journal.records.get(p.name, {}).get("status") not in ("refined", "outside")]
        summary = RefineSummary(out_path, journal_path(out_path), len(priors) + len(skipped), plan=plan,
                                already_done=len(priors) - len(todo))
        refiner = _Refiner(ortho, localizer, plan, prior_sigma_m)
        meta = {"settings": settings, "search_radius_m": plan.search_radius_m}

        def flush() -> None:
            summary.records = sorted([*journal.records.values(), *skipped_records.values()],
                                     key=lambda r: r["name"])
            write_results(out_path, summary.records, meta)

        done = summary.total - len(todo)
        flush()
        since_write = 0
        try:  # an interruption (Ctrl+C, an error) still leaves the output file with everything done so far
            with tqdm(total=summary.total, initial=done, disable=not show_progress, unit="pano",
                      desc="refine", dynamic_ncols=True) as bar:
                for start in range(0, len(todo), max(1, batch_size)):
                    if should_stop is not None and should_stop():
                        summary.stopped = True
                        break
                    batch = todo[start: start + batch_size]
                    journal.append(refiner.refine(batch))
                    done += len(batch)
                    since_write += len(batch)
                    bar.update(len(batch))
                    if progress is not None:
                        progress(done, summary.total)
                    if since_write >= WRITE_EVERY:
                        flush()
                        since_write = 0
        finally:
            flush()
    for record in summary.records:
        status = record["status"]
        summary.refined += status == "refined"
        summary.outside += status == "outside"
        summary.skipped += status == "skipped"
        summary.low_confidence += bool(status == "refined" and record["low_confidence"])
    summary.seconds = time.perf_counter() - started
    logger.info("%s", summary.message())
    return summary

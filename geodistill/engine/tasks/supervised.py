"""Supervised training of the CCVPE base with full pose labels (docs/method.md, "CCVPE").

Every training panorama is first turned to a heading drawn uniformly on the full circle (the task's seeded
generator; ``turn_to_heading`` rolls it and moves ``heading_gt``), so one model serves aligned, ±45° and unknown
headings. The loss is :meth:`geodistill.models.ccvpe.CcvpeNet.loss` (location cross-entropy, descriptor InfoNCE
over cells and heading rolls at every scale, orientation at the true location). Validation turns each validation
panorama by a fixed yaw per sample (the orientation task's validation yaws over the full circle), localizes with
the heading unknown, and reports the position errors (``mean_m`` selects ``best/``) and the heading errors.

``train.feature_cache`` (frozen backbone only) reads the backbone's taps from a disk cache
(:mod:`geodistill.engine.feature_cache`, default folder ``<data root>/.feature_cache``): the satellite taps and the
ground tap of each training panorama as stored (which the circular padding makes a tap of the whole circle), the
latter then turned by rolling its columns (:func:`turn_ground_taps`) instead of rolling the panorama, so a random
heading per step costs no backbone pass. Validation panoramas are turned first (the same yaws every epoch) and
their taps cached as they are fed.
"""

from __future__ import annotations

import math

import torch

from geodistill import keys
from geodistill.config import ExperimentConfig
from geodistill.engine.data import resolve_data_root
from geodistill.engine.distributed import DistContext
from geodistill.engine.feature_cache import tap_cache_for
from geodistill.engine.tasks.base import Task, batch_to_device
from geodistill.engine.tasks.orientation import turn_to_heading, validation_yaws
from geodistill.errors import GeoDistillError
from geodistill.evaluation import summarize_angles
from geodistill.geometry.panorama import roll_panorama
from geodistill.metrics import AngleError, PositionError, summarize_position_errors
from geodistill.models.factory import build_localizer
from geodistill.models.orientation import random_yaw

FULL_CIRCLE_DEG = 180.0  # half range of the training and validation headings


def turn_ground_taps(taps: list[torch.Tensor], delta_deg: torch.Tensor) -> list[torch.Tensor]:
    """Ground taps (B,C,h,w) of panoramas covering the full circle, as if each camera turned clockwise by its
    ``delta_deg`` (B,): the columns roll like the panorama's (``roll_panorama``, fractional columns interpolated)."""
    return [roll_panorama(tap, delta_deg.to(tap.device)) for tap in taps]


class SupervisedTask(Task):
    """One CCVPE network (``model.`` in checkpoints, role ``supervised``) trained with position and heading labels."""

    name = "supervised"

    def __init__(self, config: ExperimentConfig, ctx: DistContext):
        super().__init__(config, ctx)
        if config.model.architecture != "ccvpe":
            raise GeoDistillError(f"train.task=supervised trains the CCVPE base; set model.architecture=ccvpe "
                                  f"(got {config.model.architecture!r})")
        self.model = build_localizer(config.model).to(self.device)
        self.cache = tap_cache_for(config, self.model, resolve_data_root(config))

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model}

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self.model.trainable_parameters()

    def checkpoint_meta(self) -> dict:
        return {"task": self.name, "role": "supervised"}

    def _predict(self, batch: dict, ground_taps: list[torch.Tensor] | None = None) -> dict:
        """The model's outputs, from cached taps when the cache is on (``ground_taps``: already turned)."""
        if self.cache is None:
            return self.model(batch)
        sat_taps = self.cache.satellite_taps(batch[keys.SAT])
        if ground_taps is None:
            ground_taps = self.cache.ground_taps(batch[keys.PANO])
        return self.model.localize(self.model.encode_satellite(batch[keys.SAT], taps=sat_taps),
                                   self.model.encode_ground(batch[keys.PANO], taps=ground_taps), batch)

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """CCVPE losses on panoramas turned to random full-circle headings: ``total`` and its (B,) terms."""
        labelled = torch.as_tensor(batch[keys.HAS_GT]).bool() if keys.HAS_GT in batch else None
        if labelled is not None and not bool(labelled.all()):
            raise GeoDistillError("train.task=supervised needs a position label for every training panorama")
        yaw = random_yaw(batch[keys.PANO].shape[0], FULL_CIRCLE_DEG, self.generator)
        if self.cache is None:
            turned = turn_to_heading(batch, yaw)
            return self.model.loss(self.model(turned), turned)
        ground_taps = self.cache.ground_taps(batch[keys.PANO])
        turned = turn_to_heading(batch, yaw)
        current = torch.nan_to_num(batch[keys.HEADING_GT].float(), nan=0.0).reshape(-1).to(self.device)
        taps = turn_ground_taps(ground_taps, yaw.to(self.device) - current)
        return self.model.loss(self._predict(turned, taps), turned)

    def validate(self, loader) -> dict[str, float]:
        """Position errors (``n``, ``mean_m``, ``median_m``, ``recall_<k>m``) and heading errors (``ori_*``)
        with the heading unknown, on validation panoramas turned by fixed full-circle yaws."""
        positions = PositionError(key=keys.XY_MAX)
        angles = AngleError(key=keys.HEADING)
        for batch in loader:
            batch = batch_to_device(batch, self.device)
            indices = batch.get(keys.INDEX, range(batch[keys.PANO].shape[0]))
            turned = turn_to_heading(batch, validation_yaws(list(indices), FULL_CIRCLE_DEG, self.config.train.seed))
            pred = self._predict(turned)
            positions.update(pred, turned)
            angles.update(pred, turned)
        metrics = {name: float(value) for name, value in summarize_position_errors(positions.all()).items()}
        summary = summarize_angles(angles.all().tolist())
        metrics.update({name: (math.nan if value is None else float(value)) for name, value in summary.items()})
        return metrics

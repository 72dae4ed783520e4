"""Supervised training of the CCVPE base with full pose labels (docs/method.md, "CCVPE").

Every training panorama is first turned to a heading drawn uniformly on the full circle (the task's seeded
generator; ``turn_to_heading`` rolls it and moves ``heading_gt``), so one model serves aligned, ±45° and unknown
headings. The loss is :meth:`geodistill.models.ccvpe.CcvpeNet.loss` (location cross-entropy, descriptor InfoNCE
over cells and heading rolls at every scale, orientation at the true location). Validation turns each validation
panorama by a fixed yaw per sample (the orientation task's validation yaws over the full circle), localizes with
the heading unknown, and reports the position errors (``mean_m`` selects ``best/``) and the heading errors.
"""

from __future__ import annotations

import math

import torch

from geodistill import keys
from geodistill.config import ExperimentConfig
from geodistill.engine.distributed import DistContext
from geodistill.engine.tasks.base import Task, batch_to_device
from geodistill.engine.tasks.orientation import turn_to_heading, validation_yaws
from geodistill.errors import GeoDistillError
from geodistill.evaluation import summarize_angles
from geodistill.metrics import AngleError, PositionError, summarize_position_errors
from geodistill.models.factory import build_localizer
from geodistill.models.orientation import random_yaw

FULL_CIRCLE_DEG = 180.0  # half range of the training and validation headings


class SupervisedTask(Task):
    """One CCVPE network (``model.`` in checkpoints, role ``supervised``) trained with position and heading labels."""

    name = "supervised"

    def __init__(self, config: ExperimentConfig, ctx: DistContext):
        super().__init__(config, ctx)
        if config.model.architecture != "ccvpe":
            raise GeoDistillError(f"train.task=supervised trains the CCVPE base; set model.architecture=ccvpe "
                                  f"(got {config.model.architecture!r})")
        self.model = build_localizer(config.model).to(self.device)

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model}

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self.model.trainable_parameters()

    def checkpoint_meta(self) -> dict:
        return {"task": self.name, "role": "supervised"}

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """CCVPE losses on panoramas turned to random full-circle headings: ``total`` and its (B,) terms."""
        labelled = torch.as_tensor(batch[keys.HAS_GT]).bool() if keys.HAS_GT in batch else None
        if labelled is not None and not bool(labelled.all()):
            raise GeoDistillError("train.task=supervised needs a position label for every training panorama")
        yaw = random_yaw(batch[keys.PANO].shape[0], FULL_CIRCLE_DEG, self.generator)
        turned = turn_to_heading(batch, yaw)
        return self.model.loss(self.model(turned), turned)

    def validate(self, loader) -> dict[str, float]:
        """Position errors (``n``, ``mean_m``, ``median_m``, ``recall_<k>m``) and heading errors (``ori_*``)
        with the heading unknown, on validation panoramas turned by fixed full-circle yaws."""
        positions = PositionError(key=keys.XY_MAX)
        angles = AngleError(key=keys.HEADING)
        for batch in loader:
            batch = batch_to_device(batch, self.device)
            indices = batch.get(keys.INDEX, range(batch[keys.PANO].shape[0]))
            turned = turn_to_heading(batch, validation_yaws(list(indices), FULL_CIRCLE_DEG, self.config.train.seed))
            pred = self.model(turned)
            positions.update(pred, turned)
            angles.update(pred, turned)
        metrics = {name: float(value) for name, value in summarize_position_errors(positions.all()).items()}
        summary = summarize_angles(angles.all().tolist())
        metrics.update({name: (math.nan if value is None else float(value)) for name, value in summary.items()})
        return metrics

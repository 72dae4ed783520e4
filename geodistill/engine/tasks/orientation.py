"""Orientation-estimator training task (method.md §7.1, §8).

Training: every panorama is first rolled to north and then turned by a yaw drawn uniformly in
``[-orientation.range_deg, orientation.range_deg)`` from the task's seeded generator, so its heading is
exactly that yaw (``roll_panorama(pano, delta)`` is the view after the camera turns clockwise by delta).
With ``orientation.train_fov_min_deg`` below 360 each training panorama is also black outside one random
visible window (width uniform in [train_fov_min_deg, train_fov_max_deg]), so the estimator learns the limited
views that limited-FoV queries give it. The loss is the soft-label cross-entropy. Validation turns each full
panorama by a yaw drawn from a generator seeded by (train seed, sample index), the same every epoch and
independent of batching, and reports the mean, median and recall@1/3/5° of the absolute heading error;
``best/`` is the lowest mean error.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from geodistill import keys
from geodistill.config import ExperimentConfig
from geodistill.engine.distributed import DistContext
from geodistill.checkpoint import load_checkpoint, load_state_dict_checked, network_for_role
from geodistill.engine.tasks.base import Task, batch_to_device, resolve_init_checkpoint
from geodistill.errors import CheckpointError
from geodistill.evaluation import query_generator, summarize_angles
from geodistill.geometry.fov import fov_column_mask, sample_fov
from geodistill.metrics import AngleError
from geodistill.models.orientation import OrientationEstimator, random_yaw, rotate_panoramas

logger = logging.getLogger("geodistill.engine.tasks.orientation")

VALIDATION_YAW_STREAM = 3  # generator stream of the validation yaws (evaluation uses 1 and 2)


def _headings(batch: dict, batch_size: int, device: torch.device) -> torch.Tensor:
    heading = batch.get(keys.HEADING_GT)
    if heading is None:
        return torch.zeros(batch_size, device=device)
    heading = torch.as_tensor(heading, dtype=torch.float32, device=device).reshape(-1).expand(batch_size)
    return torch.nan_to_num(heading, nan=0.0)


def turn_to_heading(batch: dict, target_deg: torch.Tensor) -> dict:
    """A copy of ``batch`` whose panoramas face ``target_deg`` (B,): rolled by ``target - heading_gt``."""
    pano = batch[keys.PANO]
    current = _headings(batch, pano.shape[0], pano.device)
    turned = dict(batch)
    turned[keys.PANO] = rotate_panoramas(pano, target_deg.to(pano.device) - current)
    turned[keys.HEADING_GT] = target_deg.to(pano.device)
    return turned


def hide_outside_random_windows(batch: dict, min_deg: float, max_deg: float, generator: torch.Generator) -> dict:
    """A copy of ``batch`` whose panoramas are black outside one random visible window each.

    Widths are uniform in [min_deg, max_deg], centres uniform on the circle (``geometry.fov.sample_fov``);
    hidden columns are zeroed, as ``Localizer`` hides them from a limited-FoV query before estimating its heading.
    """
    pano = batch[keys.PANO]
    fov_deg, center_deg = sample_fov(pano.shape[0], generator, min_deg, max_deg)
    visible = fov_column_mask(pano.shape[-1], fov_deg, center_deg).to(pano.device)  # B,W
    hidden = dict(batch)
    hidden[keys.PANO] = pano * visible[:, None, None, :].to(pano.dtype)
    return hidden


def validation_yaws(indices, range_deg: float, seed: int) -> torch.Tensor:
    """One fixed yaw per sample index, uniform in [-range_deg, range_deg), float32 (B,)."""
    draws = [float(torch.rand(1, generator=query_generator(seed, int(index), VALIDATION_YAW_STREAM))) for index in indices]
    return (torch.tensor(draws, dtype=torch.float32) * 2.0 - 1.0) * range_deg


def load_initial_estimator(model: OrientationEstimator, name: str) -> Path:
    """Load the weights of the orientation checkpoint named by ``orientation.init_checkpoint`` into ``model``.

    The name resolves as ``distill.init_checkpoint`` does (a path, or a run or checkpoint name). The checkpoint
    must hold an orientation estimator of the same shape (backbone, input size, classes); anything else is a
    :class:`CheckpointError` that names the file. Returns the checkpoint folder.
    """
    folder = resolve_init_checkpoint(name, "orientation.init_checkpoint")
    checkpoint = load_checkpoint(folder)
    if checkpoint.task != "orientation":
        raise CheckpointError(
            f"{folder}: orientation.init_checkpoint must be an orientation-estimator checkpoint, "
            f"not a {checkpoint.task} checkpoint"
        )
    load_state_dict_checked(model, network_for_role(checkpoint), folder / "weights.safetensors")
    logger.info("orientation estimator initialised from %s", folder)
    return folder


class OrientationTask(Task):
    """Train the heading classifier on yaw-perturbed panoramas."""

    name = "orientation"
    selection_metric = "ori_mean_deg"

    def __init__(self, config: ExperimentConfig, ctx: DistContext):
        super().__init__(config, ctx)
        self.model = OrientationEstimator(config.orientation).to(self.device)
        if config.orientation.init_checkpoint:
            self.init_checkpoint = load_initial_estimator(self.model, config.orientation.init_checkpoint)
        logger.info("orientation estimator: %s encoders, %d classes over +-%g deg", config.orientation.backbone,
                    self.model.bins.num_classes, config.orientation.range_deg)

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model}

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self.model.trainable_parameters()

    def checkpoint_meta(self) -> dict:
        return {"task": self.name, "role": "orientation"}

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        batch_size = batch[keys.PANO].shape[0]
        config = self.config.orientation
        yaw = random_yaw(batch_size, config.range_deg, self.generator)
        turned = turn_to_heading(batch, yaw)
        if config.train_fov_min_deg < 360.0:
            turned = hide_outside_random_windows(turned, config.train_fov_min_deg, config.train_fov_max_deg,
                                                 self.generator)
        return self.model.loss(self.model(turned), turned)

    def validate(self, loader) -> dict[str, float]:
        """Absolute heading error on yaw-perturbed validation panoramas: ``ori_mean_deg``, ``ori_median_deg``,
        ``ori_recall_<k>deg`` and ``n``."""
        metric = AngleError(key=keys.HEADING)
        range_deg = self.config.orientation.range_deg
        for batch in loader:
            batch = batch_to_device(batch, self.device)
            batch_size = batch[keys.PANO].shape[0]
            indices = batch.get(keys.INDEX, range(batch_size))
            turned = turn_to_heading(batch, validation_yaws(list(indices), range_deg, self.config.train.seed))
            metric.update(self.model(turned), turned)
        values = metric.all()
        summary = summarize_angles(values.tolist())
        metrics = {name: (math.nan if value is None else float(value)) for name, value in summary.items()}
        metrics["n"] = float(values.numel())
        return metrics

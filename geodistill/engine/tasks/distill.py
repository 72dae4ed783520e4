"""GeoDistill training task: a FoV-masked student distilled from its EMA teacher (method.md §5.2, §6, §7).

Teacher and student start from the weak-baseline checkpoint named by ``distill.init_checkpoint`` (a
checkpoint folder, or a run folder meaning its ``best/``; relative names are looked up under the runs
root, then the checkpoints root). The teacher follows the student by EMA, once per epoch (``per_epoch``,
the paper) or after every step along a cosine momentum schedule (``per_step``).

Both networks are validated each epoch on full panoramas. ``best/`` is chosen by the deployed network's
validation mean error (``distill.deploy``); the other network's best epoch is tracked separately and
saved as ``best_<role>/`` in the run folder, so both "best student" and "best teacher" exist.

``train.feature_cache`` (frozen backbone) reads the shared backbone's taps of the tiles and of the full panoramas
(the teacher's view, and validation) from the disk cache the base's training filled; only the student's FoV-masked
panorama goes through the backbone in a step. For the CCVPE base the cached taps are those of the panorama as
stored, turned to the step's random heading by rolling their columns
(:func:`~geodistill.engine.tasks.supervised.turn_ground_taps`), so the random headings add no cache entries.
"""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geodistill import keys, settings
from geodistill.checkpoint import (
    load_checkpoint,
    load_state_dict_checked,
    network_for_role,
    resolve_checkpoint,
    save_checkpoint,
)
from geodistill.config import ExperimentConfig, config_diff, config_to_dict, without_pretrained
from geodistill.distill.ema import ema_momentum_schedule
from geodistill.distill.pipeline import DistillationPipeline
from geodistill.engine.data import resolve_data_root
from geodistill.engine.distributed import DistContext
from geodistill.engine.feature_cache import tap_cache_for
from geodistill.engine.tasks.base import Task, batch_to_device, resolve_init_checkpoint
from geodistill.engine.tasks.supervised import turn_ground_taps
from geodistill.errors import CheckpointError
from geodistill.metrics import PositionError, summarize_position_errors
from geodistill.engine.tasks.orientation import turn_to_heading
from geodistill.models.factory import build_localizer, estimates_heading
from geodistill.models.orientation import random_yaw

logger = logging.getLogger("geodistill.engine.tasks.distill")

ROLES = ("student", "teacher")


class DistillTask(Task):
    """Teacher-student self-distillation on top of a weak baseline."""

    name = "distill"

    def __init__(self, config: ExperimentConfig, ctx: DistContext):
        super().__init__(config, ctx)
        self.deploy = config.distill.deploy
        self.selection_metric = f"{self.deploy}/mean_m"
        self.init_checkpoint = resolve_init_checkpoint(config.distill.init_checkpoint)
        student_state = self._initial_weights(self.init_checkpoint)
        student = build_localizer(without_pretrained(config).model)
        load_state_dict_checked(student, student_state, self.init_checkpoint / "weights.safetensors")
        self.pipeline = DistillationPipeline(config.model, config.distill, student).to(self.device)
        self.cache = tap_cache_for(config, student, resolve_data_root(config))
        self.best: dict[str, dict[str, float | int]] = {}
        self.last_epoch = -1  # index of the epoch validated last (0-based, as in events.jsonl)
        self.run_dir: Path | None = None  # set by the training loop when it knows the run folder
        self.total_steps: int | None = None  # set by the training loop (per-step EMA schedule)
        self.last_step = 0                   # optimizer steps done, recorded in best_<role>/ checkpoints
        self._momentum: np.ndarray | None = None
        logger.info("distillation from %s: masking=%s, EMA %s (momentum %g), deploy=%s", self.init_checkpoint,
                    config.distill.masking, config.distill.ema_mode, config.distill.ema_momentum, self.deploy)

    def _initial_weights(self, folder: Path) -> dict[str, torch.Tensor]:
        checkpoint = load_checkpoint(folder)
        if checkpoint.task not in ("weak", "distill", "supervised"):
            raise CheckpointError(
                f"{folder}: distill.init_checkpoint must be a weak-baseline, supervised CCVPE (or distillation) "
                f"checkpoint, not a {checkpoint.task} checkpoint"
            )
        if checkpoint.config.model.architecture != self.config.model.architecture:
            raise CheckpointError(
                f"{folder}: holds a model.architecture={checkpoint.config.model.architecture} network, but this "
                f"recipe distils model.architecture={self.config.model.architecture}"
            )
        changed = config_diff(config_to_dict(checkpoint.config)["model"], config_to_dict(self.config)["model"])
        if changed:
            logger.warning("model settings differ from %s: %s", folder, "; ".join(changed))
        return network_for_role(checkpoint)

    # ------------------------------------------------------------------ Task interface

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"teacher": self.pipeline.teacher.module, "student": self.pipeline.student}

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self.pipeline.trainable_parameters()

    def trained_networks(self) -> dict[str, torch.nn.Module]:
        """Only the student is trained (and wrapped in DDP); the EMA teacher follows it identically on every rank."""
        return {"student": self.pipeline.student}

    def set_train_mode(self) -> None:
        self.pipeline.train()  # the EMA teacher stays in eval mode, the frozen backbone too

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"task": self.name, "role": self.deploy, "deploy": self.deploy}

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """A base that estimates its own heading (CCVPE) sees every panorama turned to a random full-circle
        heading (teacher and student alike), as in its supervised training."""
        if not estimates_heading(self.pipeline.student):
            return self.pipeline.loss(self.pipeline(batch, self.generator, taps=self._cached_taps(batch)), batch)
        yaw = random_yaw(batch[keys.PANO].shape[0], 180.0, self.generator)
        taps = self._cached_taps(batch)
        if taps is not None:
            current = torch.nan_to_num(batch[keys.HEADING_GT].float(), nan=0.0).reshape(-1).to(self.device)
            taps = (taps[0], turn_ground_taps(taps[1], yaw.to(self.device) - current))
        batch = turn_to_heading(batch, yaw)
        pred = self.pipeline(batch, self.generator, taps=taps)
        return self.pipeline.loss(pred, batch)

    def _cached_taps(self, batch: dict) -> tuple[list, list] | None:
        """The shared backbone's taps of the batch's tiles and full panoramas from the feature cache (None when
        it is off)."""
        if self.cache is None:
            return None
        return self.cache.satellite_taps(batch[keys.SAT]), self.cache.ground_taps(batch[keys.PANO])

    def momentum_at_step(self, step: int) -> float:
        """Per-step EMA: the cosine momentum after optimizer step ``step`` (1-based)."""
        config = self.config.distill
        if self._momentum is None:
            total = self.total_steps
            if not total:
                logger.warning("the loop did not report the run length; per-step EMA uses a constant momentum %g",
                               config.ema_momentum)
                total, mode = 1, "constant"
            else:
                mode = "cosine"
            self._momentum = ema_momentum_schedule(config.ema_momentum, config.ema_momentum_final, total, mode)
        return float(self._momentum[min(step - 1, len(self._momentum) - 1)])

    def on_step_end(self, step: int, epoch: int) -> None:
        self.last_step = step
        if self.config.distill.ema_mode == "per_step":
            self.pipeline.update_teacher(self.momentum_at_step(step))

    def on_epoch_end(self, epoch: int) -> None:
        if self.config.distill.ema_mode == "per_epoch":
            self.pipeline.update_teacher(self.config.distill.ema_momentum)
        self.last_epoch = epoch

    def validate(self, loader) -> dict[str, float]:
        """Teacher and student on full panoramas: ``teacher/<metric>``, ``student/<metric>`` (argmax error in
        metres), ``mean_m`` of the deployed network and the best-so-far of each (``best/<role>_mean_m``)."""
        errors = {role: PositionError(key=f"{role}/{keys.XY_MAX}") for role in ROLES}
        self.pipeline.eval()
        for batch in loader:
            batch = batch_to_device(batch, self.device)
            pred = self.pipeline.predict_both(batch, taps=self._cached_taps(batch))
            for metric in errors.values():
                metric.update(pred, batch)
        metrics: dict[str, float] = {}
        for role, metric in errors.items():
            summary = summarize_position_errors(metric.all())
            metrics.update({f"{role}/{name}": float(value) for name, value in summary.items()})
        metrics["mean_m"] = metrics[f"{self.deploy}/mean_m"]
        self._track_best(metrics)
        return metrics

    # ------------------------------------------------------------------ separate best per role

    def _track_best(self, metrics: dict[str, float]) -> None:
        for role in ROLES:
            value = metrics[f"{role}/mean_m"]
            best = self.best.get(role)
            if math.isfinite(value) and (best is None or value < best["mean_m"]):
                self.best[role] = {"mean_m": value, "epoch": self.last_epoch}
                if role != self.deploy:
                    self._save_role_best(role, metrics)
            if role in self.best:
                metrics[f"best/{role}_mean_m"] = float(self.best[role]["mean_m"])
                metrics[f"best/{role}_epoch"] = float(self.best[role]["epoch"])

    def _save_role_best(self, role: str, metrics: dict[str, float]) -> None:
        if self.run_dir is None:
            logger.debug("no run folder known; best %s kept in the metrics only", role)
            return
        role_metrics = {name.split("/", 1)[1]: value for name, value in metrics.items() if name.startswith(f"{role}/")}
        meta = {"task": self.name, "role": role, "deploy": role, "metrics": {**metrics, **role_metrics},
                "epoch": self.last_epoch + 1, "step": self.last_step,  # epochs done, as the loop's checkpoints
                "kind": f"best_{role}"}
        path = save_checkpoint(Path(self.run_dir) / f"best_{role}", self.config, self.state_dicts(), meta)
        logger.info("best %s so far (%.3f m mean): saved %s", role, metrics[f"{role}/mean_m"], path)

    def extra_state(self) -> dict:
        return {**super().extra_state(), "best": copy.deepcopy(self.best), "last_epoch": self.last_epoch}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self.best = {role: dict(entry) for role, entry in state.get("best", {}).items()}
        self.last_epoch = int(state.get("last_epoch", self.last_epoch))

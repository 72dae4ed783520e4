"""Stage 1: the weakly supervised localizer (method.md §5.1), trained from image pairing alone.

``train_step`` scores every satellite of the batch against every panorama's BEV template
(``LocalizerNet.all_pairs_distance``) and applies :func:`geodistill.losses.weak_matching_loss` at each
level of ``model.levels``; no loss term sees a position. Validation localises each validation panorama
on its own tile and reports the argmax error in metres (``xy_max`` against ``xy_gt``).

With ``train.gather_negatives`` under DDP, every rank gathers the satellite features and templates of all
ranks (gradients flow back through the gather) and computes the loss of the global batch, so a rank's
satellites are also scored against the other ranks' panoramas. Every rank then computes the global
all-pairs correlation, which costs ``world_size``× the correlation of one rank's batch. Every rank then
holds the same global loss; the gather's backward sums every rank's gradient for a rank's own rows, and
DDP's average over ranks turns that into exactly the gradient of the global loss.
"""

from __future__ import annotations

import torch

from geodistill import keys
from geodistill.config import ExperimentConfig
from geodistill.engine.distributed import DistContext, all_gather_with_grad
from geodistill.engine.tasks.base import Task, batch_to_device
from geodistill.losses import weak_matching_loss
from geodistill.metrics import PositionError, summarize_position_errors
from geodistill.models.localizer import LocalizerNet


class WeakTask(Task):
    """One :class:`~geodistill.models.localizer.LocalizerNet` (``model.`` in checkpoints, role ``weak``)."""

    name = "weak"

    def __init__(self, config: ExperimentConfig, ctx: DistContext):
        super().__init__(config, ctx)
        self.model = LocalizerNet(config.model).to(self.device)
        self.gather = config.train.gather_negatives and ctx.enabled

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model}

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self.model.trainable_parameters()

    def checkpoint_meta(self) -> dict:
        return {"task": "weak", "role": "weak"}

    def _global_distances(self, batch: dict) -> dict[int, torch.Tensor]:
        """Level -> (W·B, W·B) D matrix of the batches of all ranks."""
        f_sat_levels = self.model.encode_satellite(batch[keys.SAT])
        f_pano_levels = self.model.encode_ground(batch[keys.PANO])
        return self.model.all_pairs_from_features(f_sat_levels, f_pano_levels, batch,
                                                  gather=lambda tensor: all_gather_with_grad(tensor, self.ctx))

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """Weak matching loss: ``total`` and one (B,) term per level (``"0"``, ``"2"``, ...)."""
        distances = self._global_distances(batch) if self.gather else self.model.all_pairs_distance(batch)
        losses = weak_matching_loss(distances)
        return {"total": losses["total"], **{str(level): losses[f"weak/{level}"] for level in distances}}

    def validate(self, loader) -> dict[str, float]:
        """Argmax position error in metres over the loader: ``n``, ``mean_m``, ``median_m``, ``recall_<k>m``."""
        metric = PositionError(key=keys.XY_MAX)
        for batch in loader:
            batch = batch_to_device(batch, self.device)
            metric.update(self.model(batch), batch)
        return summarize_position_errors(metric.all())

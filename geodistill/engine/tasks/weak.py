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

``train.feature_cache`` (frozen backbone only) reads the backbone's taps of every training and validation
image from a disk cache (:mod:`geodistill.engine.feature_cache`, default folder ``<data root>/.feature_cache``),
so that after the first epoch a step costs the decoders, the BEV projection and the correlation only.

``train.noisy_gps_weight`` > 0 adds the noisy-GPS positional term of the original base (its λ = 1 setting):
each training panorama gets one fixed noisy position, its label moved uniformly within
``train.noisy_gps_radius_m`` (seeded by ``train.seed`` and the sample index, so the same in every epoch and
after a resume), and the term is −log of the probability mass of the paired score map inside that radius around
it (:func:`geodistill.losses.disc_mass_loss`), averaged over ``model.levels``. A model trained with it has
used position labels: report it as *noisy GPS*, never as purely weak.
"""

from __future__ import annotations

import math

import torch

from geodistill import keys
from geodistill.config import ExperimentConfig
from geodistill.engine.data import resolve_data_root
from geodistill.engine.distributed import DistContext, all_gather_with_grad
from geodistill.engine.feature_cache import tap_cache_for
from geodistill.engine.tasks.base import Task, batch_to_device
from geodistill.losses import disc_mass_loss, weak_matching_loss
from geodistill.metrics import PositionError, summarize_position_errors
from geodistill.models.localizer import LocalizerNet
from geodistill.models.prediction import xy_to_cells


def noisy_gps_labels(xy_gt: torch.Tensor, indices, radius_m: float, seed: int) -> torch.Tensor:
    """(B,2) labels moved uniformly within ``radius_m`` (a uniform point of the disc), fixed per sample index."""
    offsets = []
    for index in indices:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + int(index))
        angle, area = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
        distance = radius_m * area ** 0.5
        offsets.append([distance * math.cos(2 * math.pi * angle), distance * math.sin(2 * math.pi * angle)])
    return xy_gt + torch.tensor(offsets, dtype=xy_gt.dtype, device=xy_gt.device)


class WeakTask(Task):
    """One :class:`~geodistill.models.localizer.LocalizerNet` (``model.`` in checkpoints, role ``weak``)."""

    name = "weak"

    def __init__(self, config: ExperimentConfig, ctx: DistContext):
        super().__init__(config, ctx)
        self.model = LocalizerNet(config.model).to(self.device)
        self.gather = config.train.gather_negatives and ctx.enabled
        self.cache = tap_cache_for(config, self.model, resolve_data_root(config))

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model}

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self.model.trainable_parameters()

    def checkpoint_meta(self) -> dict:
        return {"task": "weak", "role": "weak"}

    def _features(self, batch: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Satellite and panorama features per level, from the cached backbone taps when the cache is on."""
        sat, pano = batch[keys.SAT], batch[keys.PANO]
        if self.cache is None:
            return self.model.encode_satellite(sat), self.model.encode_ground(pano)
        return (self.model.encode_satellite(sat, taps=self.cache.satellite_taps(sat)),
                self.model.encode_ground(pano, taps=self.cache.ground_taps(pano)))

    def _noisy_gps_term(self, f_sat_levels: list[torch.Tensor], f_pano_levels: list[torch.Tensor],
                        batch: dict) -> torch.Tensor:
        """(B,) noisy-GPS term averaged over the levels (module docstring)."""
        train = self.config.train
        labels = noisy_gps_labels(batch[keys.XY_GT].float(), batch[keys.INDEX], train.noisy_gps_radius_m, train.seed)
        outputs = self.model.localize(f_sat_levels, f_pano_levels, batch)
        tile_size = batch[keys.SAT].shape[-1]
        _, _, covered_px = self.model.satellite_layout(tile_size)
        mpp = torch.as_tensor(batch[keys.METERS_PER_PIXEL], dtype=torch.float32, device=labels.device).reshape(-1)
        terms = []
        for level, f_sat in zip(self.model.levels, f_sat_levels):
            scores = outputs[keys.level_key(keys.SCORES, level)]
            cell_m = mpp.expand(scores.shape[0]) * (covered_px / f_sat.shape[-1])
            centre = xy_to_cells(labels, tuple(scores.shape[-2:]), cell_m)
            terms.append(disc_mass_loss(scores, centre, train.noisy_gps_radius_m / cell_m,
                                        self.model.config.score_temperature))
        return torch.stack(terms).mean(dim=0)

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """Weak matching loss: ``total`` and one (B,) term per level (``"0"``, ``"2"``, ...); with the noisy-GPS
        term also ``"gps"`` (added to ``total`` with weight ``train.noisy_gps_weight``)."""
        f_sat_levels, f_pano_levels = self._features(batch)
        gather = (lambda tensor: all_gather_with_grad(tensor, self.ctx)) if self.gather else None
        distances = self.model.all_pairs_from_features(f_sat_levels, f_pano_levels, batch, gather=gather)
        losses = weak_matching_loss(distances)
        result = {"total": losses["total"], **{str(level): losses[f"weak/{level}"] for level in distances}}
        weight = self.config.train.noisy_gps_weight
        if weight > 0:
            gps = self._noisy_gps_term(f_sat_levels, f_pano_levels, batch)
            result["gps"] = gps
            result["total"] = result["total"] + weight * gps.mean()
        return result

    def validate(self, loader) -> dict[str, float]:
        """Argmax position error in metres over the loader: ``n``, ``mean_m``, ``median_m``, ``recall_<k>m``."""
        metric = PositionError(key=keys.XY_MAX)
        for batch in loader:
            batch = batch_to_device(batch, self.device)
            f_sat_levels, f_pano_levels = self._features(batch)
            metric.update(self.model.localize(f_sat_levels, f_pano_levels, batch), batch)
        return summarize_position_errors(metric.all())

"""The GeoDistill teacher-student pipeline (method.md §4.3, §5.2, §6, §7), for either base model.

One distillation step: backbone taps of the satellite tile (once, shared by both networks) and of the
full panorama -> teacher forward (no mask, no gradients) -> backbone taps of the masked panorama ->
student forward with the mask -> paired correlations at every level -> cross-entropy between the
teacher's and the student's spatial softmaxes. The teacher follows the student by EMA
(:class:`~geodistill.distill.ema.EmaTeacher`); only the student's decoders receive gradients.
"""

from __future__ import annotations

import copy
import logging
import statistics
import time

import torch
from torch import nn

from geodistill import keys
from geodistill.config import DistillConfig, ModelConfig
from geodistill.distill.ema import EmaTeacher
from geodistill.distill.masking import max_activation_mask, patch_grid_to_cells, random_patch_grid, sample_fov_masks
from geodistill.losses import distillation_loss, heading_vector_loss, weak_matching_loss
from geodistill.models.azimuth_matching import value_at, vector_to_heading_deg
from geodistill.models.bev_projection import template_cells
from geodistill.models.factory import build_localizer, estimates_heading
from geodistill.models.localizer import LocalizerNet
from geodistill.models.prediction import argmax_cells

logger = logging.getLogger("geodistill.distill.pipeline")



class DistillationPipeline(nn.Module):
    """A student base network (G2SWeakly or CCVPE) and its EMA teacher, sharing one frozen backbone.

    The teacher starts as a copy of the student, so load the weak-baseline weights into the student before
    building the pipeline. When the backbone is frozen, both networks reference the same backbone module
    (one set of backbone passes per step); otherwise the teacher gets its own copy, which the EMA tracks
    like every other parameter.

    Args:
        model_config: the localizer's configuration.
        distill_config: temperatures, masking and EMA settings.
        student: an existing student network (default: a new ``build_localizer(model_config)``).
    """

    required_data_keys = LocalizerNet.required_data_keys

    def __init__(self, model_config: ModelConfig, distill_config: DistillConfig, student: nn.Module | None = None):
        super().__init__()
        for name in ("tau_teacher", "tau_student"):
            if getattr(distill_config, name) <= 0.0:
                raise ValueError(f"distill.{name} must be positive, got {getattr(distill_config, name)}")
        if distill_config.masking != "fov" and not 0.0 <= distill_config.mask_ratio < 1.0:
            raise ValueError(f"distill.mask_ratio must be in [0, 1), got {distill_config.mask_ratio}")
        self.config = distill_config
        self.student = student if student is not None else build_localizer(model_config)
        if estimates_heading(self.student) and distill_config.masking != "fov":
            raise ValueError(f"distill.masking={distill_config.masking!r} masks BEV template cells, which the CCVPE "
                             "base does not have; use distill.masking=fov")
        self.levels = list(self.student.levels)
        self.shares_backbone = self.student.freeze_backbone
        memo = {id(self.student.backbone): self.student.backbone} if self.shares_backbone else {}
        self.teacher = EmaTeacher(self.student, copy.deepcopy(self.student, memo))

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The student's trainable parameters (its decoders; the backbone too when not frozen)."""
        return self.student.trainable_parameters()

    def update_teacher(self, momentum: float) -> None:
        """``teacher <- momentum * teacher + (1 - momentum) * student`` (parameters and buffers)."""
        self.teacher.update(self.student, momentum)

    def _template_masks(self, f_sat_levels, f_pano_levels, batch, generator) -> dict[int, torch.Tensor]:
        config = self.config
        crop = self.student.config.template_crop
        sides = {level: template_cells(f_sat.shape[-1], crop) for level, f_sat in zip(self.levels, f_sat_levels)}
        batch_size = f_sat_levels[0].shape[0]
        device = f_sat_levels[0].device
        if config.masking == "random_patches":
            visible = random_patch_grid(batch_size, config.patch_grid, config.mask_ratio, generator)
            return {level: patch_grid_to_cells(visible, side).to(device) for level, side in sides.items()}
        with torch.no_grad():
            templates = self.student.templates(f_sat_levels, f_pano_levels, batch)
        return {
            level: max_activation_mask(entry["template"], config.mask_ratio, entry["valid"])
            for level, entry in templates.items()
        }

    def forward(self, batch: dict, generator: torch.Generator | None = None,
                column_mask: torch.Tensor | None = None, taps: tuple[list, list] | None = None) -> dict:
        """Teacher on the full panorama, student on the masked one.

        | key                        | in/out | shape        | meaning |
        |----------------------------|--------|--------------|---------|
        | ``sat``, ``pano``, ``meters_per_pixel`` | in | see ``LocalizerNet.forward`` | |
        | ``column_mask`` (argument) | in     | (B,Wp) bool  | optional fixed student view (``fov`` masking) |
        | ``teacher/<key>``          | out    |              | every ``LocalizerNet`` output of the teacher |
        | ``student/<key>``          | out    |              | every ``LocalizerNet`` output of the student |
        | ``student/fov_mask``       | out    | (B,Wp) bool  | the columns the student saw (all True unless ``fov``) |

        Args:
            batch: the localisation batch.
            generator: the source of the random masks (required unless ``column_mask`` is given for
                ``fov`` masking).
            column_mask: a fixed visible-column mask for the student instead of a random one.
            taps: the shared frozen backbone's (satellite, full panorama) taps when already known (the feature
                cache); the student's masked panorama is always encoded anew.
        """
        missing = [key for key in self.required_data_keys if key not in batch]
        if missing:
            raise KeyError(f"DistillationPipeline needs batch keys {missing}")
        masking = self.config.masking
        if generator is None and ((masking == "fov" and column_mask is None) or masking == "random_patches"):
            raise ValueError("DistillationPipeline.forward needs a torch.Generator for its random masks")
        sat, pano = batch[keys.SAT], batch[keys.PANO]
        teacher = self.teacher.module
        sat_taps, full_taps = taps if taps is not None else self._shared_taps(sat, pano)
        with torch.no_grad():
            t_sat = teacher.encode_satellite(sat, taps=sat_taps)
            t_pano = teacher.encode_ground(pano, taps=full_taps)
            teacher_out = teacher.localize(t_sat, t_pano, batch)

        s_sat = self.student.encode_satellite(sat, taps=sat_taps)
        bev_mask = None
        template_masks = None
        if masking == "fov":
            if column_mask is None:
                column_mask, _, _ = sample_fov_masks(pano.shape[0], pano.shape[-1], self.config.fov, generator)
            column_mask = column_mask.to(pano.device)
            s_pano = self.student.encode_ground(pano, column_mask)
            bev_mask = column_mask if self.config.fov.mask_bev else None
        else:
            s_pano = self.student.encode_ground(pano, taps=full_taps)
            template_masks = self._template_masks(s_sat, s_pano, batch, generator)
            column_mask = torch.ones(pano.shape[0], pano.shape[-1], dtype=torch.bool, device=pano.device)
        student_out = self.student.localize(s_sat, s_pano, batch, fov_mask=bev_mask, template_masks=template_masks)

        outputs = {f"{keys.TEACHER_PREFIX}{name}": value for name, value in teacher_out.items()}
        outputs.update({f"{keys.STUDENT_PREFIX}{name}": value for name, value in student_out.items()})
        outputs[keys.STUDENT_VIEW] = column_mask
        return outputs

    @torch.no_grad()
    def _shared_taps(self, sat: torch.Tensor, pano: torch.Tensor, column_mask: torch.Tensor | None = None):
        """(satellite, panorama) taps of the shared frozen backbone, computed once for both networks; (None, None)
        when each network has its own backbone."""
        if not self.shares_backbone:
            return None, None
        return self.student.satellite_taps(sat), self.student.ground_taps(pano, column_mask)

    def predict_both(self, batch: dict, column_mask: torch.Tensor | None = None,
                     taps: tuple[list, list] | None = None) -> dict:
        """Teacher and student on the same view (validation): ``teacher/<key>`` and ``student/<key>`` outputs.

        Args:
            batch: the localisation batch.
            column_mask: optional (B,Wp) bool view shown to both (image and BEV masked); default the full
                panorama.
            taps: the shared backbone's (satellite, panorama) taps of this view when already known.
        """
        sat, pano = batch[keys.SAT], batch[keys.PANO]
        sat_taps, pano_taps = taps if taps is not None else self._shared_taps(sat, pano, column_mask)
        outputs = {}
        for prefix, network in ((keys.TEACHER_PREFIX, self.teacher.module), (keys.STUDENT_PREFIX, self.student)):
            f_sat = network.encode_satellite(sat, taps=sat_taps)
            f_pano = network.encode_ground(pano, column_mask, taps=pano_taps)
            result = network.localize(f_sat, f_pano, batch, fov_mask=column_mask)
            outputs.update({f"{prefix}{name}": value for name, value in result.items()})
        return outputs

    def loss(self, pred: dict, data: dict | None = None) -> dict[str, torch.Tensor]:
        """Distillation cross-entropy averaged over levels: ``distill/<l>`` and ``distill`` (B,), ``total``.

        With ``distill.orientation_weight`` > 0 and a base that outputs a heading field (CCVPE), ``orientation``
        (B,) = 2 − 2·cos(student heading − teacher heading) at the teacher's most likely cell is added to the
        total with that weight.
        """
        teacher = {level: pred[f"{keys.TEACHER_PREFIX}{keys.level_key(keys.SCORES, level)}"] for level in self.levels}
        student = {level: pred[f"{keys.STUDENT_PREFIX}{keys.level_key(keys.SCORES, level)}"] for level in self.levels}
        losses = distillation_loss(teacher, student, self.config.tau_teacher, self.config.tau_student)
        teacher_field = pred.get(f"{keys.TEACHER_PREFIX}{keys.ORIENTATION_FIELD}")
        if self.config.orientation_weight > 0 and teacher_field is not None:
            peak = argmax_cells(pred[f"{keys.TEACHER_PREFIX}{keys.SCORES}"].detach())
            teacher_heading = vector_to_heading_deg(value_at(teacher_field.detach(), peak)[:, :, None])[:, 0]
            student_vector = value_at(pred[f"{keys.STUDENT_PREFIX}{keys.ORIENTATION_FIELD}"], peak)
            orientation = heading_vector_loss(student_vector, teacher_heading)
            losses["orientation"] = orientation
            losses["total"] = losses["total"] + self.config.orientation_weight * orientation.mean()
        return losses


def _timed(step, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def bench_distill_step(model_config: ModelConfig, distill_config: DistillConfig | None = None, batch_size: int = 8,
                       pano_hw: tuple[int, int] = (64, 128), sat_size: int = 128, repeats: int = 5,
                       device: str | torch.device = "cpu", seed: int = 0) -> dict:
    """Median seconds of one distillation training step against one weak training step at the same sizes.

    Both steps are forward, loss, backward and an AdamW step on random inputs (the weak step: all-pairs
    distances and the weak matching loss; the distillation step: teacher and masked student, distillation
    loss), timed alternately after one warm-up each. The target is ``ratio <= 1.6``.

    Args:
        model_config: the localizer of both steps (backbone weights do not change timings: build it with
            ``pretrained=False, allow_random_init=True`` where no weights are at hand).
        distill_config: masking and EMA settings of the distillation step.
        batch_size: pairs per step (at least 2, the weak loss needs in-batch negatives).
        pano_hw: panorama (height, width) in pixels.
        sat_size: satellite side in pixels.
        repeats: timed steps of each kind.
        device: where to run.
        seed: seed of the random inputs, weights and masks.

    Returns:
        ``{"distill_s", "weak_s", "ratio", "batch_size", "pano_hw", "sat_size", "device", "repeats"}``.
    """
    device = torch.device(device)
    distill_config = distill_config or DistillConfig()
    generator = torch.Generator().manual_seed(seed)
    batch = {
        keys.SAT: torch.rand(batch_size, 3, sat_size, sat_size, generator=generator).to(device),
        keys.PANO: torch.rand(batch_size, 3, *pano_hw, generator=generator).to(device),
        keys.METERS_PER_PIXEL: torch.full((batch_size,), 72.0 / sat_size).to(device),
    }
    torch.manual_seed(seed)
    weak = LocalizerNet(model_config).to(device).train()
    weak_optimizer = torch.optim.AdamW(weak.trainable_parameters(), lr=1e-6)

    def weak_step() -> None:
        weak_optimizer.zero_grad(set_to_none=True)
        weak_matching_loss(weak.all_pairs_distance(batch))["total"].backward()
        weak_optimizer.step()

    pipeline = DistillationPipeline(model_config, distill_config).to(device).train()
    distill_optimizer = torch.optim.AdamW(pipeline.trainable_parameters(), lr=1e-6)

    def distill_step() -> None:
        distill_optimizer.zero_grad(set_to_none=True)
        pipeline.loss(pipeline(batch, generator))["total"].backward()
        distill_optimizer.step()

    weak_step()  # warm-up (allocator, kernels, plans)
    distill_step()
    weak_times, distill_times = [], []
    for _ in range(repeats):  # interleaved, so a change of machine load affects both alike
        weak_times.append(_timed(weak_step, device))
        distill_times.append(_timed(distill_step, device))
    weak_s, distill_s = statistics.median(weak_times), statistics.median(distill_times)
    return {
        "distill_s": distill_s, "weak_s": weak_s, "ratio": distill_s / weak_s, "batch_size": batch_size,
        "pano_hw": list(pano_hw), "sat_size": sat_size, "device": str(device), "repeats": repeats,
    }

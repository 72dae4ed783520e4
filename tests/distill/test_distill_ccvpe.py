"""GeoDistill on the CCVPE base: the same pipeline, the descriptor masked, the heading distilled."""

from __future__ import annotations

import pytest
import torch

from geodistill import keys
from geodistill.config import CcvpeConfig, DistillConfig, ModelConfig
from geodistill.distill.pipeline import DistillationPipeline
from geodistill.geometry.fov import fov_column_mask
from geodistill.models.ccvpe import CcvpeNet


def ccvpe_model_config() -> ModelConfig:
    return ModelConfig(architecture="ccvpe", backbone="tiny_cnn", pretrained=False, allow_random_init=True,
                       ccvpe=CcvpeConfig(azimuth_bins=8, match_strides=[16, 8], descriptor_channels=[8, 8],
                                         decoder_width=16, output_stride=4, ground_width=16))


def make_pipeline(**distill) -> DistillationPipeline:
    torch.manual_seed(0)
    return DistillationPipeline(ccvpe_model_config(), DistillConfig(tau_teacher=1.0, tau_student=1.0, **distill))


def make_batch(size: int = 2, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        keys.SAT: torch.rand(size, 3, 64, 64, generator=generator),
        keys.PANO: torch.rand(size, 3, 64, 128, generator=generator),
        keys.METERS_PER_PIXEL: torch.full((size,), 0.5),
    }


def test_the_pipeline_builds_a_ccvpe_student_and_shares_its_backbone():
    pipeline = make_pipeline()
    assert isinstance(pipeline.student, CcvpeNet) and isinstance(pipeline.teacher.module, CcvpeNet)
    assert pipeline.teacher.module.backbone is pipeline.student.backbone
    with pytest.raises(ValueError, match="masking=fov"):
        DistillationPipeline(ccvpe_model_config(), DistillConfig(masking="random_patches"))


def test_gradients_reach_only_the_student_with_the_orientation_term():
    pipeline = make_pipeline(orientation_weight=1.0)
    pipeline.train()
    pred = pipeline(make_batch(), torch.Generator().manual_seed(1))
    losses = pipeline.loss(pred)
    assert set(losses) == {"distill/0", "distill", "orientation", "total"}
    assert losses["orientation"].shape == (2,) and float(losses["orientation"].detach().min()) >= 0.0
    losses["total"].backward()
    grads = [p.grad for p in pipeline.trainable_parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in pipeline.teacher.module.parameters())
    assert all(p.grad is None for p in pipeline.student.backbone.parameters())
    assert not pred[f"teacher/{keys.ORIENTATION_FIELD}"].requires_grad
    # the orientation term alone moves the student's heading field
    pipeline.student.zero_grad(set_to_none=True)
    pipeline.loss(pipeline(make_batch(), torch.Generator().manual_seed(1)))["orientation"].mean().backward()
    head = pipeline.student.aerial_decoder.rotation_head[-1].weight.grad
    assert head is not None and float(head.abs().sum()) > 0


def test_without_the_orientation_weight_only_the_location_is_distilled():
    pipeline = make_pipeline()
    losses = pipeline.loss(pipeline(make_batch(), torch.Generator().manual_seed(1)))
    assert "orientation" not in losses
    torch.testing.assert_close(losses["total"], losses["distill"].mean())


def test_teacher_changes_only_through_the_ema_formula():
    pipeline = make_pipeline(orientation_weight=0.5)
    pipeline.train()
    teacher = pipeline.teacher.module
    start = {name: t.detach().clone() for name, t in teacher.state_dict().items()}
    optimizer = torch.optim.AdamW(pipeline.trainable_parameters(), lr=1e-2)
    for seed in range(2):
        optimizer.zero_grad()
        pipeline.loss(pipeline(make_batch(seed=seed), torch.Generator().manual_seed(seed)))["total"].backward()
        optimizer.step()
    assert all(torch.equal(t, start[name]) for name, t in teacher.state_dict().items())
    student = {name: t.detach().clone() for name, t in pipeline.student.state_dict().items()}
    assert any(not torch.equal(student[name], start[name]) for name in student)
    pipeline.update_teacher(0.8)
    for name, tensor in teacher.state_dict().items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, 0.8 * start[name] + 0.2 * student[name], rtol=0, atol=1e-7, msg=name)


@torch.no_grad()
def test_the_students_hidden_columns_change_nothing():
    pipeline = make_pipeline().eval()
    batch = make_batch()
    visible = fov_column_mask(128, torch.tensor([180.0, 200.0]), torch.tensor([0.0, 90.0]))
    changed = dict(batch, **{keys.PANO: torch.where(visible[:, None, None, :], batch[keys.PANO],
                                                     torch.rand(batch[keys.PANO].shape))})
    first = pipeline(batch, column_mask=visible)
    second = pipeline(changed, column_mask=visible)
    assert torch.equal(first[keys.STUDENT_VIEW], visible)
    for key in (f"student/{keys.SCORES}", f"student/{keys.ORIENTATION_FIELD}"):
        torch.testing.assert_close(second[key], first[key], rtol=0, atol=0)
    assert not torch.allclose(second[f"teacher/{keys.SCORES}"], first[f"teacher/{keys.SCORES}"])

"""The teacher-student pipeline: gradients, EMA-only teacher changes, masks on the student's template."""

from __future__ import annotations

import math

import pytest
import torch

from geodistill import keys
from geodistill.config import DistillConfig, FovConfig, ModelConfig
from geodistill.distill.masking import patch_grid_to_cells, random_patch_grid
from geodistill.distill.pipeline import DistillationPipeline, bench_distill_step
from geodistill.geometry.fov import fov_column_mask


def tiny_model_config() -> ModelConfig:
    return ModelConfig(backbone="tiny_cnn", pretrained=False, decoder_width=16, level_channels=[16, 8, 8],
                       correlation="direct")  # direct is the faster path at these tiny sizes


def make_pipeline(**distill) -> DistillationPipeline:
    torch.manual_seed(0)
    return DistillationPipeline(tiny_model_config(), DistillConfig(**distill))


def make_batch(size: int = 2, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        keys.SAT: torch.rand(size, 3, 64, 64, generator=generator),
        keys.PANO: torch.rand(size, 3, 32, 64, generator=generator),
        keys.METERS_PER_PIXEL: torch.full((size,), 0.5),
    }


def state_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def cell_bearings_deg(cells: int) -> torch.Tensor:
    """Bearing (clockwise from north) of each BEV cell centre seen from the camera at the grid centre."""
    index = torch.arange(cells, dtype=torch.float64) + 0.5 - cells / 2
    east = index.view(1, -1).expand(cells, cells)
    north = -index.view(-1, 1).expand(cells, cells)
    return torch.rad2deg(torch.atan2(east, north))


def test_teacher_is_frozen_shares_the_backbone_and_stays_in_eval_mode():
    pipeline = make_pipeline()
    pipeline.train()
    teacher = pipeline.teacher.module
    assert pipeline.student.training and not teacher.training
    assert teacher.backbone is pipeline.student.backbone and not teacher.backbone.training
    assert all(not p.requires_grad for p in teacher.parameters())
    assert pipeline.trainable_parameters() == pipeline.student.trainable_parameters()
    backbone_ids = {id(p) for p in pipeline.student.backbone.parameters()}
    assert not backbone_ids & {id(p) for p in pipeline.trainable_parameters()}


def test_gradients_reach_only_the_student_decoders():
    pipeline = make_pipeline()
    pipeline.train()
    pred = pipeline(make_batch(), torch.Generator().manual_seed(1))
    losses = pipeline.loss(pred)
    assert set(losses) == {"distill/0", "distill/2", "distill", "total"}
    assert losses["distill"].shape == (2,)
    losses["total"].backward()
    student_grads = [p.grad for p in pipeline.trainable_parameters()]
    assert all(g is not None for g in student_grads)
    assert sum(float(g.abs().sum()) for g in student_grads) > 0
    assert all(p.grad is None for p in pipeline.teacher.module.parameters())
    assert all(p.grad is None for p in pipeline.student.backbone.parameters())
    assert not pred["teacher/scores/2"].requires_grad


def test_teacher_changes_only_through_the_ema_formula():
    pipeline = make_pipeline()
    pipeline.train()
    teacher = pipeline.teacher.module
    start = state_copy(teacher)
    optimizer = torch.optim.AdamW(pipeline.trainable_parameters(), lr=1e-2)
    for seed in range(2):
        optimizer.zero_grad()
        pipeline.loss(pipeline(make_batch(seed=seed), torch.Generator().manual_seed(seed)))["total"].backward()
        optimizer.step()
    for name, tensor in state_copy(teacher).items():
        assert torch.equal(tensor, start[name]), f"{name} changed without an EMA update"
    student = state_copy(pipeline.student)
    assert any(not torch.equal(student[name], start[name]) for name in student)

    pipeline.update_teacher(0.9)
    for name, tensor in state_copy(teacher).items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, 0.9 * start[name] + 0.1 * student[name], rtol=0, atol=1e-7, msg=name)
        else:
            assert torch.equal(tensor, student[name]), name


def test_fov_mask_removes_the_hidden_part_of_the_student_template():
    pipeline = make_pipeline()
    pipeline.eval()
    batch = make_batch()
    view = fov_column_mask(64, 180.0, 0.0).expand(2, -1)  # the north half is visible
    with torch.no_grad():
        pred = pipeline(batch, column_mask=view)
    student, teacher = pred["student/f_bev"], pred["teacher/f_bev"]
    cells = student.shape[-1]
    bearing = cell_bearings_deg(cells).abs()
    hidden, visible = bearing > 100.0, bearing < 80.0
    teacher_energy = teacher.abs().sum(dim=1)  # B,c,c
    student_energy = student.abs().sum(dim=1)
    assert bool((teacher_energy[:, hidden] > 0).any()), "the teacher sees the south half"
    assert float(student_energy[:, hidden].max()) == 0.0
    seen = visible & (teacher_energy[0] > 0)
    assert bool((student_energy[:, seen] > 0).all())
    assert torch.equal(pred[keys.STUDENT_VIEW], view)


def test_hidden_columns_do_not_influence_the_student():
    pipeline = make_pipeline()
    pipeline.eval()
    batch = make_batch()
    view = fov_column_mask(64, 200.0, 90.0).expand(2, -1)
    changed = dict(batch)
    changed[keys.PANO] = torch.where(view[:, None, None, :], batch[keys.PANO], torch.rand_like(batch[keys.PANO]))
    with torch.no_grad():
        first, second = pipeline(batch, column_mask=view), pipeline(changed, column_mask=view)
    for level in (0, 2):
        assert torch.equal(first[f"student/scores/{level}"], second[f"student/scores/{level}"])
        assert not torch.equal(first[f"teacher/scores/{level}"], second[f"teacher/scores/{level}"])


def test_random_fov_views_are_seeded_and_within_the_configured_range():
    pipeline = make_pipeline(fov=FovConfig(min_deg=90.0, max_deg=120.0))
    batch = make_batch(size=4)
    with torch.no_grad():
        first = pipeline(batch, torch.Generator().manual_seed(5))[keys.STUDENT_VIEW]
        second = pipeline(batch, torch.Generator().manual_seed(5))[keys.STUDENT_VIEW]
        other = pipeline(batch, torch.Generator().manual_seed(6))[keys.STUDENT_VIEW]
    assert torch.equal(first, second) and not torch.equal(first, other)
    share = first.float().mean(dim=1)
    assert bool(((share >= 90 / 360 - 1 / 64) & (share <= 120 / 360 + 1 / 64)).all())
    with pytest.raises(ValueError, match="Generator"):
        pipeline(batch)


def test_random_patches_remove_exactly_the_hidden_patches():
    pipeline = make_pipeline(masking="random_patches", mask_ratio=0.5, patch_grid=4)
    batch = make_batch()
    with torch.no_grad():
        pred = pipeline(batch, torch.Generator().manual_seed(3))
    visible = random_patch_grid(2, 4, 0.5, torch.Generator().manual_seed(3))
    student, teacher = pred["student/f_bev"], pred["teacher/f_bev"]
    weight = patch_grid_to_cells(visible, student.shape[-1])
    assert float(student.abs().sum(dim=1)[weight == 0].max()) == 0.0
    torch.testing.assert_close(student * weight[:, None], teacher * weight[:, None])  # same weights, same image
    assert bool(pred[keys.STUDENT_VIEW].all())


def test_max_activation_hides_the_strongest_template_cells():
    pipeline = make_pipeline(masking="max_activation", mask_ratio=0.25)
    with torch.no_grad():
        pred = pipeline(make_batch(), torch.Generator().manual_seed(0))
    teacher, student = pred["teacher/f_bev"], pred["student/f_bev"]
    valid = pred["teacher/valid_bev"]
    for b in range(2):
        energy = teacher[b].square().sum(dim=0).flatten()
        energy[~valid[b].flatten()] = -math.inf
        hidden = int(round(0.25 * int(valid[b].sum())))
        top = torch.topk(energy, hidden).indices
        assert float(student[b].flatten(1)[:, top].abs().max()) == 0.0
        kept = torch.ones_like(energy, dtype=torch.bool)
        kept[top] = False
        torch.testing.assert_close(student[b].flatten(1)[:, kept], teacher[b].flatten(1)[:, kept])


def test_identical_views_give_the_teacher_entropy_as_loss():
    pipeline = make_pipeline()
    batch = make_batch()
    with torch.no_grad():
        pred = pipeline(batch, column_mask=torch.ones(2, 64, dtype=torch.bool))
        both = pipeline.predict_both(batch)
    losses = pipeline.loss(pred)
    for level in (0, 2):
        scores = pred[f"teacher/scores/{level}"]
        torch.testing.assert_close(pred[f"student/scores/{level}"], scores)
        torch.testing.assert_close(both[f"student/scores/{level}"], scores)
        prob = torch.softmax(scores.flatten(1) / 0.06, dim=1)
        entropy = -(prob * prob.clamp_min(1e-30).log()).sum(dim=1)
        torch.testing.assert_close(losses[f"distill/{level}"], entropy, rtol=1e-4, atol=1e-5)


def test_bench_distill_step_reports_both_timings():
    result = bench_distill_step(tiny_model_config(), batch_size=2, pano_hw=(32, 64), sat_size=64, repeats=1)
    assert result["distill_s"] > 0 and result["weak_s"] > 0
    assert result["ratio"] == pytest.approx(result["distill_s"] / result["weak_s"])


def test_image_only_masking_keeps_the_whole_template():
    pipeline = make_pipeline(fov=FovConfig(mask_bev=False))
    batch = make_batch()
    view = fov_column_mask(64, 180.0, 0.0).expand(2, -1)
    changed = dict(batch)
    changed[keys.PANO] = torch.where(view[:, None, None, :], batch[keys.PANO], torch.rand_like(batch[keys.PANO]))
    with torch.no_grad():
        pred = pipeline(batch, column_mask=view)
        again = pipeline(changed, column_mask=view)
    hidden = cell_bearings_deg(pred["student/f_bev"].shape[-1]).abs() > 100.0
    assert float(pred["student/f_bev"].abs().sum(dim=1)[:, hidden].max()) > 0.0  # the BEV is not masked
    torch.testing.assert_close(again["student/scores/2"], pred["student/scores/2"])  # the image is


def test_bad_temperatures_are_refused():
    with pytest.raises(ValueError, match="tau_student"):
        make_pipeline(tau_student=0.0)

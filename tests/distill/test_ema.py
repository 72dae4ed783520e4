"""EmaTeacher: frozen, eval-mode, changes only through the EMA formula (buffers included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from geodistill.distill.ema import EmaTeacher, ema_momentum_schedule


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))


def full_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def train_student_one_step(student: nn.Module, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    student.train()
    loss = student(torch.randn(2, 3, 5, 5, generator=generator)).square().mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def test_teacher_is_frozen_and_stays_in_eval_mode():
    student = small_net()
    teacher = EmaTeacher(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(p.requires_grad for p in student.parameters())
    wrapper = nn.ModuleDict({"student": student, "teacher": teacher})
    wrapper.train()
    assert student.training
    assert not teacher.training and not any(m.training for m in teacher.modules())
    out = teacher(torch.randn(1, 3, 5, 5))
    assert not out.requires_grad and out.grad_fn is None


def test_update_matches_the_formula_for_parameters_and_buffers():
    student = small_net()
    teacher = EmaTeacher(student)
    before = full_state(teacher.module)
    train_student_one_step(student)
    student_state = full_state(student)
    # the student moved, its BN statistics too, and the teacher did not follow by itself
    assert not torch.allclose(student_state["0.weight"], before["0.weight"])
    assert not torch.allclose(student_state["1.running_mean"], before["1.running_mean"])
    assert student_state["1.num_batches_tracked"].item() == 1
    for name, tensor in full_state(teacher.module).items():
        assert torch.equal(tensor, before[name]), name

    momentum = 0.9
    teacher.update(student, momentum)
    after = full_state(teacher.module)
    for name, tensor in after.items():
        if tensor.is_floating_point():
            expected = momentum * before[name] + (1 - momentum) * student_state[name]
            torch.testing.assert_close(tensor, expected, rtol=0, atol=1e-7, msg=name)
        else:
            assert torch.equal(tensor, student_state[name]), name
    assert "1.running_var" in after and not torch.equal(after["1.running_var"], before["1.running_var"])
    assert teacher.num_updates == 1


def test_momentum_one_keeps_teacher_and_zero_copies_student():
    student = small_net()
    teacher = EmaTeacher(student)
    before = full_state(teacher.module)
    train_student_one_step(student)
    teacher.update(student, 1.0)
    for name, tensor in full_state(teacher.module).items():
        if tensor.is_floating_point():
            assert torch.equal(tensor, before[name]), name
    teacher.update(student, 0.0)
    for name, tensor in full_state(teacher.module).items():
        assert torch.equal(tensor, student.state_dict()[name]), name


def test_gradients_never_reach_the_teacher():
    student = small_net()
    teacher = EmaTeacher(student)
    x = torch.randn(2, 3, 5, 5)
    loss = (student(x) - teacher(x)).square().mean()
    loss.backward()
    assert all(p.grad is not None for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters())


def test_shared_tensors_are_left_alone():
    student = small_net()
    teacher = EmaTeacher(student)
    teacher.module[0] = student[0]  # e.g. a frozen backbone both networks reference
    shared = student[0].weight.detach().clone()
    teacher.update(student, 0.5)
    assert torch.equal(student[0].weight, shared)


def test_layout_mismatch_and_bad_momentum_are_refused():
    student = small_net()
    with pytest.raises(ValueError, match="layout"):
        EmaTeacher(student, teacher=nn.Sequential(nn.Conv2d(3, 4, 3)))
    teacher = EmaTeacher(student)
    with pytest.raises(ValueError, match="outside"):
        teacher.update(student, 1.5)
    with pytest.raises(ValueError):
        teacher.update(nn.Sequential(nn.Conv2d(3, 4, 3)), 0.9)


def test_momentum_schedule():
    cosine = ema_momentum_schedule(0.9, 0.999, 11)
    assert cosine.shape == (11,)
    assert cosine[0] == pytest.approx(0.9) and cosine[-1] == pytest.approx(0.999)
    assert np.all(np.diff(cosine) > 0)
    assert cosine[5] == pytest.approx((0.9 + 0.999) / 2)
    np.testing.assert_allclose(ema_momentum_schedule(0.9, 0.999, 4, mode="constant"), 0.9)
    assert ema_momentum_schedule(0.9, 0.999, 1).tolist() == [0.9]
    with pytest.raises(ValueError):
        ema_momentum_schedule(0.9, 1.2, 5)
    with pytest.raises(ValueError):
        ema_momentum_schedule(0.9, 0.99, 0)

import math

import pytest
import torch

from geodistill.losses import distillation_loss, gaussian_soft_labels, orientation_loss, weak_matching_loss


def softplus(x):
    return math.log(1 + math.exp(x))


def test_weak_loss_on_a_hand_made_matrix():
    distances = torch.tensor([[0.5, 1.0], [0.8, 0.2]], requires_grad=True)
    out = weak_matching_loss(distances)
    row0 = math.log(2) + softplus(10 * (0.5 - 1.0))
    row1 = softplus(10 * (0.2 - 0.8)) + math.log(2)
    assert out["weak/0"].tolist() == pytest.approx([row0, row1], rel=1e-5)
    assert out["total"].item() == pytest.approx((row0 + row1) / 2, rel=1e-5)
    out["total"].backward()
    # the diagonal term of row 0 carries no gradient: dL/dD[0,0] comes from the off-diagonal term only
    sigmoid = 1 / (1 + math.exp(5.0))
    assert distances.grad[0, 0].item() == pytest.approx(10 * sigmoid / 2, rel=1e-5)
    assert distances.grad[0, 1].item() == pytest.approx(-10 * sigmoid / 2, rel=1e-5)


def test_weak_loss_three_pairs_and_levels():
    matrix = torch.tensor([[0.0, 0.1, 0.3], [0.2, 0.0, 0.1], [0.4, 0.4, 0.4]])
    expected = sum(softplus(10 * (matrix[m, m].item() - matrix[m, n].item())) for m in range(3) for n in range(3)) / 6
    assert weak_matching_loss(matrix)["total"].item() == pytest.approx(expected, rel=1e-5)
    out = weak_matching_loss({0: matrix, 2: torch.zeros(3, 3)})
    assert out["weak/2"].tolist() == pytest.approx([3 * math.log(2) / 2] * 3)
    assert out["total"].item() == pytest.approx((expected + 3 * math.log(2) / 2) / 2, rel=1e-5)
    assert out["weak"].shape == (3,)
    with pytest.raises(ValueError, match="at least 2"):
        weak_matching_loss(torch.zeros(1, 1))


def test_distillation_cross_entropy_on_tiny_maps():
    tau = 0.06
    teacher = torch.tensor([[[0.0, tau * math.log(3)]]])  # softmax -> [1/4, 3/4]
    student = torch.zeros(1, 1, 2, requires_grad=True)  # softmax -> [1/2, 1/2]
    out = distillation_loss({2: teacher}, {2: student}, tau, tau)
    assert out["distill/2"].tolist() == pytest.approx([math.log(2)], rel=1e-6)
    assert out["total"].item() == pytest.approx(math.log(2), rel=1e-6)
    out["total"].backward()
    # d CE / d s_p = (P_s - P_t) / tau
    assert student.grad.flatten().tolist() == pytest.approx([(0.5 - 0.25) / tau, (0.5 - 0.75) / tau], rel=1e-5)


def test_distillation_teacher_is_detached_and_minimum_at_match():
    teacher = torch.randn(2, 3, 3, requires_grad=True)
    out = distillation_loss(teacher, teacher.detach().clone().requires_grad_(True))
    out["total"].backward()
    assert teacher.grad is None
    target = torch.softmax(teacher.detach().flatten(1) / 0.06, dim=1)
    entropy = -(target * target.log()).sum(dim=1)
    assert torch.allclose(out["distill"], entropy, atol=1e-5)
    with pytest.raises(ValueError, match="levels"):
        distillation_loss({0: teacher}, {2: teacher})


def test_gaussian_soft_labels_and_orientation_loss():
    labels = gaussian_soft_labels(torch.tensor([1]), 3, sigma=1.0)
    weights = [math.exp(-0.5), 1.0, math.exp(-0.5)]
    assert labels[0].tolist() == pytest.approx([w / sum(weights) for w in weights], rel=1e-6)
    wrapped = gaussian_soft_labels(torch.tensor([0.0]), 90, circular=True)
    assert wrapped[0, 89].item() == pytest.approx(wrapped[0, 1].item())
    assert gaussian_soft_labels(torch.tensor([0.0]), 90)[0, 89].item() < 1e-6
    logits = torch.zeros(2, 3)
    out = orientation_loss(logits, torch.tensor([1, 1]))
    assert out["orientation"].tolist() == pytest.approx([math.log(3)] * 2, rel=1e-6)
    soft = labels.expand(2, 3)
    best = orientation_loss(soft.log(), soft)
    entropy = -(labels * labels.log()).sum().item()
    assert best["total"].item() == pytest.approx(entropy, rel=1e-5)

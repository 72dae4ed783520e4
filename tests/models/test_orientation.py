"""Orientation estimator: exact heading classes, soft labels, the roll-back path and a tiny model."""

from __future__ import annotations

import pytest
import torch

from geodistill import keys
from geodistill.config import OrientationConfig
from geodistill.models.orientation import (
    HeadingBins,
    OrientationEstimator,
    align_panorama_to_north,
    random_yaw,
    rotate_panoramas,
)


def test_default_bins_are_90_one_degree_classes_over_plus_minus_45():
    bins = HeadingBins()
    assert bins.num_classes == 90 and not bins.full_circle
    assert bins.encode(torch.tensor(-45.0)).item() == 0
    assert bins.encode(torch.tensor(-44.01)).item() == 0
    assert bins.encode(torch.tensor(-44.0)).item() == 1
    assert bins.encode(torch.tensor(0.0)).item() == 45
    assert bins.encode(torch.tensor(44.99)).item() == 89
    assert bins.decode(torch.tensor([0, 45, 89])).tolist() == [-44.5, 0.5, 44.5]


@pytest.mark.parametrize("range_deg,bin_deg", [(45.0, 1.0), (180.0, 1.0), (45.0, 2.5), (180.0, 5.0)])
def test_encode_decode_round_trip(range_deg, bin_deg):
    bins = HeadingBins(range_deg, bin_deg)
    classes = torch.arange(bins.num_classes)
    assert torch.equal(bins.encode(bins.decode(classes)), classes)
    headings = (torch.rand(500, generator=torch.Generator().manual_seed(0)) * 2 - 1) * range_deg
    decoded = bins.decode(bins.encode(headings))
    assert float((decoded - headings).abs().max()) <= bin_deg / 2 + 1e-5
    # the decoded heading lies in the bin [k*bin - range, (k+1)*bin - range) of its class
    k = bins.encode(headings).double()
    assert bool(((k * bin_deg - range_deg <= headings.double() + 1e-9) & (headings.double() < (k + 1) * bin_deg - range_deg)).all())


def test_full_circle_wraps():
    bins = HeadingBins(180.0, 1.0)
    assert bins.num_classes == 360
    assert bins.encode(torch.tensor(180.0)).item() == bins.encode(torch.tensor(-180.0)).item() == 0
    assert bins.encode(torch.tensor(370.0)).item() == bins.encode(torch.tensor(10.0)).item() == 190
    assert bins.encode(torch.tensor(179.5)).item() == 359


def test_out_of_range_and_bad_bins_are_refused():
    with pytest.raises(ValueError, match="outside"):
        HeadingBins(45.0).encode(torch.tensor([10.0, 50.0]))
    with pytest.raises(ValueError, match="whole number"):
        HeadingBins(45.0, 0.7)
    with pytest.raises(ValueError):
        HeadingBins(200.0)


@pytest.mark.parametrize("range_deg", [45.0, 180.0])
def test_soft_labels_peak_at_the_encoded_class(range_deg):
    bins = HeadingBins(range_deg, 1.0)
    headings = (torch.rand(200, generator=torch.Generator().manual_seed(1)) * 2 - 1) * range_deg
    soft = bins.soft_labels(headings, sigma_bins=1.0)
    assert soft.shape == (200, bins.num_classes)
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(200))
    assert torch.equal(soft.argmax(dim=1), bins.encode(headings))
    # decoding the soft label's peak gives back the heading to within half a bin
    assert float((bins.decode(soft.argmax(dim=1)) - headings).abs().max()) <= 0.5 + 1e-5


def test_soft_labels_are_gaussian_and_wrap_on_the_full_circle():
    bins = HeadingBins(45.0, 1.0)
    soft = bins.soft_labels(torch.tensor([0.5]), sigma_bins=2.0)[0]  # centre of class 45
    assert soft[44].item() == pytest.approx(soft[46].item())
    assert (soft[45] / soft[46]).item() == pytest.approx(torch.exp(torch.tensor(1 / 8)).item(), rel=1e-5)
    circle = HeadingBins(180.0, 1.0).soft_labels(torch.tensor([-179.5]), sigma_bins=1.0)[0]  # class 0
    assert circle.argmax().item() == 0
    assert circle[359].item() == pytest.approx(circle[1].item())


def marker_panorama(width: int = 32) -> torch.Tensor:
    pano = torch.zeros(1, 3, 4, width)
    pano[..., 3 * width // 4] = 1.0  # east
    pano[..., width // 2] = 0.5  # north (centre line)
    return pano


def test_turning_clockwise_brings_east_to_the_centre_line():
    pano = marker_panorama()
    turned = rotate_panoramas(pano, torch.tensor([90.0]))  # heading 90: the centre line faces east
    assert turned[0, 0, 0].argmax().item() == 16


def test_roll_by_theta_then_align_restores_each_panorama():
    width = 64
    generator = torch.Generator().manual_seed(3)
    pano = torch.rand(4, 3, 8, width, generator=generator)
    # whole-column yaws, so the round trip is exact (fractional shifts interpolate)
    yaw = torch.round(random_yaw(4, 45.0, generator) * width / 360.0) * 360.0 / width
    assert not torch.equal(yaw, torch.zeros(4)) and len(set(yaw.tolist())) > 1
    perturbed = rotate_panoramas(pano, yaw)
    assert not torch.allclose(perturbed, pano)
    torch.testing.assert_close(align_panorama_to_north(perturbed, yaw), pano)


def test_random_yaw_is_seeded_and_in_range():
    first = random_yaw(1000, 45.0, torch.Generator().manual_seed(7))
    assert torch.equal(first, random_yaw(1000, 45.0, torch.Generator().manual_seed(7)))
    assert float(first.min()) >= -45.0 and float(first.max()) < 45.0
    assert float(first.min()) < -40 and float(first.max()) > 40


def tiny_config(**changes) -> OrientationConfig:
    config = OrientationConfig(backbone="tiny_cnn", pretrained=False, input_size=32, hidden=[32, 16])
    for name, value in changes.items():
        setattr(config, name, value)
    return config


def tiny_batch(batch: int = 2, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        keys.PANO: torch.rand(batch, 3, 16, 32, generator=generator),
        keys.SAT: torch.rand(batch, 3, 40, 40, generator=generator),
        keys.HEADING_GT: torch.tensor([-30.2, 12.7])[:batch],
    }


def test_estimator_outputs_and_loss():
    torch.manual_seed(0)
    model = OrientationEstimator(tiny_config())
    batch = tiny_batch()
    pred = model(batch)
    assert pred[keys.HEADING_LOGITS].shape == (2, 90)
    assert pred[keys.HEADING].shape == (2,)
    assert bool((pred[keys.HEADING].abs() < 45).all())
    losses = model.loss(pred, batch)
    assert losses["orientation"].shape == (2,) and losses["total"].dim() == 0
    losses["total"].backward()
    for name, module in (("sat", model.sat_encoder), ("topdown", model.topdown_encoder)):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), name
    with pytest.raises(KeyError, match="sat"):
        model({keys.PANO: batch[keys.PANO]})


def test_estimator_learns_a_fixed_batch():
    torch.manual_seed(0)
    model = OrientationEstimator(tiny_config(range_deg=180.0, bin_deg=30.0))
    batch = tiny_batch()
    batch[keys.HEADING_GT] = torch.tensor([-100.0, 100.0])
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=3e-3)
    for _ in range(15):
        optimizer.zero_grad()
        loss = model.loss(model(batch), batch)["total"]
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        heading = model(batch)[keys.HEADING]
    assert heading.tolist() == [-105.0, 105.0]  # the centres of the bins holding -100 and 100


def test_input_size_must_suit_the_backbone():
    with pytest.raises(ValueError, match="multiple of 16"):
        OrientationEstimator(tiny_config(input_size=40))

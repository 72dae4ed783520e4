"""The noisy-GPS term of the weak task: fixed labels within the radius, the disc-mass loss, and its cell geometry
agreeing with the localizer's own position outputs."""

from __future__ import annotations

import math

import pytest
import torch

from geodistill import keys
from geodistill.config import ConfigError, load_config
from geodistill.engine import data as engine_data
from geodistill.engine.distributed import DistContext
from geodistill.engine.tasks.weak import WeakTask, noisy_gps_labels
from geodistill.losses import disc_mass_loss, location_cross_entropy

from test_weak_training import TINY, fixture_overrides, load_fake_vigor_writer


def test_noisy_labels_are_fixed_per_sample_and_uniform_in_the_disc():
    xy = torch.zeros(2000, 2)
    labels = noisy_gps_labels(xy, range(2000), 5.0, seed=7)
    distance = labels.norm(dim=1)
    assert distance.max() <= 5.0 + 1e-9 and distance.min() >= 0
    assert distance.mean().item() == pytest.approx(2 * 5.0 / 3, abs=0.15)      # uniform in area: E[r] = 2R/3
    assert (labels[:, 0] > 0).float().mean().item() == pytest.approx(0.5, abs=0.05)
    assert torch.equal(noisy_gps_labels(xy[:3] + 1, [4, 5, 6], 5.0, seed=7), labels[4:7] + 1)  # same index, same noise
    assert not torch.equal(noisy_gps_labels(xy[:3], [4, 5, 6], 5.0, seed=8), labels[4:7])


def test_disc_mass_loss_sums_the_probability_inside_the_radius():
    logits = torch.randn(2, 5, 6)
    probs = torch.softmax(logits.flatten(1) / 0.5, dim=1).view(2, 5, 6)
    centre = torch.tensor([[2.0, 3.0], [0.2, 0.1]])
    loss = disc_mass_loss(logits, centre, torch.tensor([1.0, 0.0]), temperature=0.5)
    inside = probs[0, 2, 3] + probs[0, 1, 3] + probs[0, 3, 3] + probs[0, 2, 2] + probs[0, 2, 4]
    assert loss[0].item() == pytest.approx(-math.log(inside.item()), rel=1e-5)
    # a radius below one cell keeps the nearest cell only: the location cross-entropy
    assert loss[1].item() == pytest.approx(location_cross_entropy(logits, centre, 0.5)[1].item(), rel=1e-5)
    whole = disc_mass_loss(logits, centre, torch.tensor([100.0, 100.0]), temperature=0.5)
    assert whole.abs().max().item() < 1e-5                                        # the whole map: probability 1


def test_gps_term_uses_the_cells_the_localizer_reports(tmp_path):
    root = tmp_path / "root"
    load_fake_vigor_writer()(root)
    overrides = [*fixture_overrides(root), "model.levels=[2]", "model.subcell_refine=false"]
    config = load_config(TINY, [*overrides, "train.noisy_gps_weight=1", "train.noisy_gps_radius_m=1e-6"])
    train, _ = engine_data.build_datasets(config, DistContext())
    batch = next(iter(engine_data.build_train_loader(train, config, DistContext())))
    task = WeakTask(config, DistContext())
    with torch.no_grad():
        outputs = task.model(batch)
        batch[keys.XY_GT] = outputs[keys.XY_MAX]                   # labels on the predicted argmax cell
        losses = task.train_step(batch)
    # a vanishing radius keeps the label's own cell: the term is -log of the peak probability
    assert torch.allclose(losses["gps"], -outputs[keys.CONFIDENCE].log(), atol=1e-4)
    assert set(losses) == {"total", "2", "gps"}
    assert losses["total"].item() == pytest.approx(losses["2"].mean().item() + losses["gps"].mean().item(), rel=1e-5)
    pure = WeakTask(load_config(TINY, overrides), DistContext())
    assert "gps" not in pure.train_step(batch)
    with pytest.raises(ConfigError, match="noisy_gps_radius_m"):
        load_config(TINY, ["train.noisy_gps_radius_m=0"])

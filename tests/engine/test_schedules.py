"""Schedules are arrays indexed by step: warm-up, cosine end points, constant."""

from __future__ import annotations

import numpy as np
import pytest

from geodistill.config import OptimConfig
from geodistill.engine.schedules import constant_schedule, cosine_schedule, lr_schedule


def test_cosine_end_points_and_midpoint():
    values = cosine_schedule(1.0, 0.0, 5)
    assert values.tolist() == pytest.approx([1.0, 0.8535534, 0.5, 0.1464466, 0.0])


def test_warmup_is_linear_from_warmup_start():
    values = cosine_schedule(2.0, 1.0, 6, warmup=2)
    assert values[:2].tolist() == [0.0, 1.0]
    assert values[2] == 2.0 and values[-1] == pytest.approx(1.0)
    assert np.all(np.diff(values[2:]) <= 0)


def test_constant_and_edge_lengths():
    assert constant_schedule(3.0, 3).tolist() == [3.0, 3.0, 3.0]
    assert cosine_schedule(1.0, 0.0, 1).tolist() == [1.0]
    assert cosine_schedule(1.0, 0.0, 0).shape == (0,)
    assert cosine_schedule(1.0, 0.0, 2, warmup=5).tolist() == [0.0, 0.5]
    with pytest.raises(ValueError):
        cosine_schedule(1.0, 0.0, -1)


def test_lr_schedule_from_config():
    cosine = lr_schedule(OptimConfig(lr=1e-3, min_lr=1e-5, schedule="cosine", warmup_steps=0), 11)
    assert cosine[0] == pytest.approx(1e-3) and cosine[-1] == pytest.approx(1e-5)
    paper = lr_schedule(OptimConfig(lr=1e-4, min_lr=1e-4, schedule="cosine"), 7)   # the reference: min = lr
    assert np.allclose(paper, 1e-4)
    constant = lr_schedule(OptimConfig(lr=1e-4, schedule="constant", warmup_steps=3), 5)
    assert constant.tolist() == pytest.approx([0.0, 1e-4 / 3, 2e-4 / 3, 1e-4, 1e-4])

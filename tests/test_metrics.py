import math

import pytest
import torch

from geodistill import keys
from geodistill.metrics import (
    AngleError, MeanMedian, PositionError, Recall, angle_error_deg, position_error_m, recall_at,
    summarize_position_errors,
)


def test_position_and_angle_errors():
    assert position_error_m(torch.tensor([[3.0, 4.0]]), torch.zeros(1, 2)).tolist() == [5.0]
    assert angle_error_deg(torch.tensor([350.0, 10.0, 180.0]), torch.tensor([10.0, 350.0, 0.0])).tolist() == [20, 20, 180]


def test_identity_prediction_has_recall_one():
    xy = torch.randn(4, 2)
    metric = Recall(1.0, key=keys.XY_MAX)
    metric.update({keys.XY_MAX: xy}, {keys.XY_GT: xy})
    assert metric.compute() == {"n": 4, "recall": 1.0}


def test_accumulators_mean_median_recall_and_gt_mask():
    metric = PositionError(key=keys.XY_EXPECTATION)
    pred = {keys.XY_EXPECTATION: torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 10.0], [7.0, 0.0]])}
    data = {keys.XY_GT: torch.zeros(5, 2), keys.HAS_GT: torch.tensor([True, True, True, True, False])}
    errors = metric.update(pred, data)
    assert math.isnan(errors[4].item())
    assert metric.compute() == {"n": 4, "mean": 4.0, "median": 2.5}
    assert recall_at(metric.all(), 3.0) == 0.75
    metric.reset()
    assert metric.compute()["n"] == 0
    summary = summarize_position_errors(torch.tensor([1.0, 2.0, 3.0, 10.0]))
    assert summary == {"n": 4, "mean_m": 4.0, "median_m": 2.5, "recall_1m": 0.25, "recall_3m": 0.75,
                       "recall_5m": 0.75}


def test_angle_metric():
    metric = AngleError()
    metric.update({keys.HEADING: torch.tensor([359.0, 90.0])}, {keys.HEADING_GT: torch.tensor([1.0, 100.0])})
    assert metric.compute() == {"n": 2, "mean": pytest.approx(6.0), "median": pytest.approx(6.0)}
    values = MeanMedian()
    values.add(torch.tensor([1.0, 3.0]))
    assert values.compute()["median"] == 2.0

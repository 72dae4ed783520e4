import math

import pytest
import torch

from geodistill import keys
from geodistill.geometry.frames import xy_to_uv
from geodistill.models.prediction import (
    FAITHFUL_CENTER_SHIFT, argmax_cells, cells_to_xy, entropy, expectation_cells, peak_confidence,
    predict_from_scores, prob_on_tile, score_center, tile_uv_to_xy, xy_to_cells, xy_to_tile_uv,
)


def test_paper_centre_and_offsets():
    # DINOv2 at 512 px: A = 296, c = 118 -> 179² score map, p0 = 89, cell = 518/296 px.
    assert score_center((179, 179)) == (89.0, 89.0)
    mpp = 0.14156
    cell = torch.tensor([mpp * 518 / 296])
    rowcol = torch.tensor([[89.0, 89.0], [79.0, 99.0]])
    xy = cells_to_xy(rowcol, (179, 179), cell)
    assert torch.allclose(xy[0], torch.zeros(2))
    assert xy[1].tolist() == pytest.approx([10 * cell.item(), 10 * cell.item()])  # 10 cells east, 10 north
    uv = xy_to_tile_uv(xy, 512, torch.tensor([mpp]))
    assert uv[0].tolist() == [256.0, 256.0]
    assert uv[1].tolist() == pytest.approx([256 + 17.5, 256 - 17.5], abs=1e-4)  # 10 cells = 17.5 px


def test_round_trips():
    torch.manual_seed(0)
    rowcol = torch.rand(5, 2) * 40
    cell = torch.rand(5) + 0.5
    for shift in (0.0, FAITHFUL_CENTER_SHIFT):
        xy = cells_to_xy(rowcol, (41, 41), cell, shift)
        assert torch.allclose(xy_to_cells(xy, (41, 41), cell, shift), rowcol, atol=1e-5)
    mpp = torch.rand(5) + 0.1
    xy = torch.randn(5, 2) * 10
    assert torch.allclose(tile_uv_to_xy(xy_to_tile_uv(xy, 128, mpp), 128, mpp), xy, atol=1e-5)


def test_north_is_smaller_v_and_agrees_with_frames():
    uv = xy_to_tile_uv(torch.tensor([[0.0, 10.0]]), 640, torch.tensor([0.5]))
    assert uv.tolist() == [[320.0, 300.0]]
    xy = torch.tensor([[3.0, -7.0]], dtype=torch.float64)
    expected = torch.as_tensor(xy_to_uv(xy, 640, 0.5), dtype=torch.float64)
    assert torch.allclose(xy_to_tile_uv(xy, 640, torch.tensor([0.5])), expected.reshape(1, 2))


def test_faithful_shift_moves_by_half_a_cell():
    cell = torch.tensor([2.0])
    exact = cells_to_xy(torch.tensor([[10.0, 10.0]]), (21, 21), cell)
    faithful = cells_to_xy(torch.tensor([[10.0, 10.0]]), (21, 21), cell, FAITHFUL_CENTER_SHIFT)
    assert exact.tolist() == [[0.0, 0.0]]
    assert faithful.tolist() == [[-1.0, 1.0]]


def test_argmax_and_quadratic_refinement():
    rows, cols = torch.meshgrid(torch.arange(9.0), torch.arange(11.0), indexing="ij")
    scores = -((rows - 4.25) ** 2) - 0.5 * (cols - 6.6) ** 2  # a paraboloid: the fit is exact
    scores = scores.unsqueeze(0)
    assert argmax_cells(scores).tolist() == [[4.0, 7.0]]
    assert argmax_cells(scores, refine=True)[0].tolist() == pytest.approx([4.25, 6.6], abs=1e-5)
    border = torch.zeros(1, 5, 5)
    border[0, 0, 2] = 1.0
    assert argmax_cells(border, refine=True).tolist() == [[0.0, 2.0]]


def test_expectation_confidence_entropy():
    prob = torch.zeros(1, 3, 4)
    prob[0, 1, 1] = 0.5
    prob[0, 2, 3] = 0.5
    assert expectation_cells(prob).tolist() == [[1.5, 2.0]]
    assert peak_confidence(prob).tolist() == [0.5]
    assert entropy(prob).item() == pytest.approx(math.log(2))
    uniform = torch.full((1, 3, 4), 1 / 12)
    assert entropy(uniform).item() == pytest.approx(math.log(12))


def test_predict_from_scores_keys_and_values():
    scores = torch.zeros(2, 5, 5)
    scores[0, 2, 2] = 1.0
    scores[1, 0, 4] = 1.0
    out = predict_from_scores(scores, torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.5]), 64, temperature=0.06)
    assert {keys.SCORES, keys.LOG_PROBS, keys.PROB, keys.UV_MAX, keys.XY_MAX, keys.UV_EXPECTATION,
            keys.XY_EXPECTATION, keys.CONFIDENCE, keys.ENTROPY} <= set(out)
    assert out[keys.XY_MAX].tolist() == [[0.0, 0.0], [4.0, 4.0]]
    assert out[keys.UV_MAX].tolist() == [[32.0, 32.0], [40.0, 24.0]]
    assert torch.allclose(out[keys.PROB].sum(dim=(1, 2)), torch.ones(2))
    assert torch.allclose(out[keys.LOG_PROBS].exp(), out[keys.PROB])
    assert (out[keys.CONFIDENCE] > 0.9).all()


def test_prob_on_tile_peaks_at_the_prediction():
    prob = torch.zeros(1, 9, 9)
    prob[0, 4, 6] = 1.0  # two cells east of the centre
    cell, mpp = torch.tensor([1.0]), torch.tensor([0.25])
    tile = prob_on_tile(prob, cell, mpp, 64)
    assert tile.shape == (1, 64, 64)
    v, u = divmod(tile[0].argmax().item(), 64)
    assert (u + 0.5, v + 0.5) == pytest.approx((32 + 8, 32), abs=0.6)  # 2 m east = 8 px
    assert tile.sum().item() == pytest.approx(1.0, rel=0.02)
    assert tile[0, :, :8].abs().max() == 0  # outside the search region

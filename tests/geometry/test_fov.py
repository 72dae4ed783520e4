"""FoV column masks, their cone on the BEV grid, and the seeded sampler."""

from __future__ import annotations

import math

import pytest
import torch

from geodistill.geometry.bev import bev_sampling_grid
from geodistill.geometry.fov import bev_fov_mask, fov_column_mask, sample_fov


@pytest.mark.parametrize("fov_deg", [30.0, 90.0, 180.0, 217.5, 359.0])
@pytest.mark.parametrize("center_deg", [0.0, 37.3, -120.0, 180.0])
def test_kept_fraction_is_fov_over_360(fov_deg, center_deg):
    width = 720
    mask = fov_column_mask(width, fov_deg, center_deg)
    assert mask.dtype == torch.bool and mask.shape == (width,)
    assert abs(mask.float().mean().item() - fov_deg / 360.0) <= 1.0 / width


def test_mask_is_centred_where_asked():
    mask = fov_column_mask(360, 90.0, 90.0)  # centred east: u = 3W/4
    kept = torch.nonzero(mask).flatten()
    assert kept.min().item() == 225 and kept.max().item() == 314  # azimuths [45, 135)


def test_wrap_at_the_seam():
    assert fov_column_mask(8, 90.0, 180.0).int().tolist() == [1, 0, 0, 0, 0, 0, 0, 1]
    assert fov_column_mask(8, 90.0, -180.0).int().tolist() == [1, 0, 0, 0, 0, 0, 0, 1]
    mask = fov_column_mask(360, 100.0, 170.0)
    assert mask[:40].all() and mask[300:].all() and not mask[40:300].any()


def test_full_and_empty_fov():
    assert fov_column_mask(17, 360.0, 123.0).all()
    assert not fov_column_mask(17, 0.0, 0.0).any()
    with pytest.raises(ValueError, match="fov_deg"):
        fov_column_mask(16, 400.0, 0.0)


def test_batched_masks():
    fov = torch.tensor([90.0, 360.0, 180.0])
    center = torch.tensor([0.0, 0.0, 180.0])
    masks = fov_column_mask(16, fov, center)
    assert masks.shape == (3, 16)
    assert masks[0].tolist() == fov_column_mask(16, 90.0, 0.0).tolist()
    assert masks[1].all()
    assert masks[2].int().tolist() == [1] * 4 + [0] * 8 + [1] * 4


def cell_bearings_deg(grid_size: int, cell_m: float, center_xy_m=(0.0, 0.0)) -> torch.Tensor:
    steps = torch.arange(grid_size, dtype=torch.float64) + 0.5 - grid_size / 2
    east = steps.view(1, -1) * cell_m + center_xy_m[0]
    north = -steps.view(-1, 1) * cell_m + center_xy_m[1]
    return torch.rad2deg(torch.atan2(east, north)).expand(grid_size, grid_size)


@pytest.mark.parametrize("center_xy_m", [(0.0, 0.0), (3.0, -2.0)])
@pytest.mark.parametrize(("fov_deg", "center_deg"), [(90.0, 0.0), (120.0, 180.0), (200.0, -60.0)])
def test_bev_cone_has_its_apex_at_the_camera(fov_deg, center_deg, center_xy_m):
    width, grid_size, cell_m = 720, 40, 0.5
    grid = bev_sampling_grid((360, width), grid_size, cell_m, 2.0, center_xy_m=center_xy_m)
    cone = bev_fov_mask(fov_column_mask(width, fov_deg, center_deg), grid)[0]
    assert cone.shape == (grid_size, grid_size)
    assert cone.min() >= 0 and cone.max() <= 1
    offset = (cell_bearings_deg(grid_size, cell_m, center_xy_m) - center_deg + 180) % 360 - 180
    margin = 2.0  # degrees: a little more than the bilinear blur of 360/W = 0.5°
    inside = offset.abs() < fov_deg / 2 - margin
    outside = offset.abs() > fov_deg / 2 + margin
    assert inside.any() and outside.any()
    assert (cone[inside] > 0.99).all()
    assert (cone[outside] < 0.01).all()


def test_bev_cone_is_soft_only_at_its_borders():
    width = 64
    grid = bev_sampling_grid((32, width), 16, 1.0, 2.0)
    cone = bev_fov_mask(fov_column_mask(width, 90.0, 0.0), grid)
    fractional = (cone > 0.01) & (cone < 0.99)
    assert 0 < fractional.sum() < cone.numel() / 4


def test_bev_cone_batched():
    grid = bev_sampling_grid((16, 32), 8, 1.0, torch.tensor([2.0, 2.0]))
    masks = fov_column_mask(32, torch.tensor([360.0, 0.0]), torch.tensor([0.0, 0.0]))
    cone = bev_fov_mask(masks, grid)
    assert cone.shape == (2, 8, 8)
    assert torch.allclose(cone[0], torch.ones(8, 8)) and torch.allclose(cone[1], torch.zeros(8, 8))


def test_uniform_sampler_range_and_seed():
    fov, center = sample_fov(5000, torch.Generator().manual_seed(3), 180.0, 240.0)
    assert fov.dtype == torch.float32 and fov.shape == (5000,)
    assert fov.min() >= 180 and fov.max() <= 240
    assert fov.min() < 181 and fov.max() > 239  # covers the whole range
    assert center.min() >= -180 and center.max() < 180
    again = sample_fov(5000, torch.Generator().manual_seed(3), 180.0, 240.0)
    assert torch.equal(fov, again[0]) and torch.equal(center, again[1])
    fixed, _ = sample_fov(10, torch.Generator().manual_seed(0), 200.0, 200.0)
    assert (fixed == 200).all()


def north_hidden_fraction(sampler: str) -> float:
    fov, center = sample_fov(20000, torch.Generator().manual_seed(7), 210.0, 211.0, sampler=sampler)
    visible = fov_column_mask(360, fov, center)
    return 1.0 - visible[:, 180].float().mean().item()  # column just east of the centre line


def test_uniform_sampler_hides_north_at_the_masked_fraction():
    assert north_hidden_fraction("uniform") == pytest.approx(150 / 360, abs=0.02)


def test_faithful_sampler_reproduces_the_reference_bias():
    assert north_hidden_fraction("faithful") == pytest.approx(150 / 210, abs=0.02)


def test_faithful_sampler_integers_and_wedge_never_crosses_the_seam():
    fov, center = sample_fov(4000, torch.Generator().manual_seed(1), 180.0, 240.0, sampler="faithful")
    assert torch.equal(fov, fov.round())
    assert fov.min() == 180 and fov.max() == 239  # the reference's exclusive upper bound
    masked = 360 - fov
    assert masked.min() > 120 and masked.max() <= 180
    visible = fov_column_mask(720, fov, center)
    hidden = ~visible
    assert not (hidden[:, 0] & hidden[:, -1]).any()  # the masked wedge never wraps across the seam
    runs = (hidden[:, 1:] & ~hidden[:, :-1]).sum(1) + hidden[:, 0].long()
    assert (runs == 1).all()  # one contiguous wedge


def test_sampler_rejects_bad_arguments():
    generator = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="sampler"):
        sample_fov(2, generator, 180.0, 240.0, sampler="other")
    with pytest.raises(ValueError, match="min_deg"):
        sample_fov(2, generator, 240.0, 180.0)
    assert math.isclose(sample_fov(1, generator, 90.0, 90.0)[0].item(), 90.0)

"""Student masks: seeded FoV windows, image zeroing, random patches and max-activation cells."""

from __future__ import annotations

import pytest
import torch

from geodistill.config import FovConfig
from geodistill.distill.masking import (
    mask_panorama_columns,
    max_activation_mask,
    patch_grid_to_cells,
    random_patch_grid,
    sample_fov_masks,
)


@pytest.mark.parametrize("sampler", ["uniform", "faithful"])
def test_fov_masks_are_seeded_contiguous_windows_of_the_configured_width(sampler):
    fov = FovConfig(min_deg=180.0, max_deg=240.0, sampler=sampler)
    width = 360
    mask, fov_deg, center_deg = sample_fov_masks(64, width, fov, torch.Generator().manual_seed(0))
    again, _, _ = sample_fov_masks(64, width, fov, torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)
    assert mask.shape == (64, width) and mask.dtype == torch.bool
    assert bool(((fov_deg >= 180) & (fov_deg <= 240)).all())
    visible = mask.sum(dim=1).float()
    assert bool(((visible - fov_deg).abs() <= 1.0).all())  # one column per degree here
    # one contiguous visible run on the circle: exactly one False->True transition (cyclically)
    rises = (mask & ~torch.roll(mask, 1, dims=1)).sum(dim=1)
    assert bool((rises == 1).all())


def test_fov_range_is_checked():
    with pytest.raises(ValueError, match="FoV range"):
        sample_fov_masks(2, 64, FovConfig(min_deg=250.0, max_deg=240.0), torch.Generator())


def test_mask_panorama_columns_zeroes_hidden_columns_only():
    pano = torch.rand(2, 3, 4, 8) + 0.1
    mask = torch.tensor([[True] * 4 + [False] * 4, [False, True] * 4])
    masked = mask_panorama_columns(pano, mask)
    assert torch.equal(masked[~mask[:, None, None, :].expand_as(pano)], torch.zeros(int((~mask).sum()) * 12))
    assert torch.equal(masked[0, :, :, :4], pano[0, :, :, :4])
    with pytest.raises(ValueError, match="width"):
        mask_panorama_columns(pano, torch.ones(2, 7, dtype=torch.bool))


def test_random_patches_hide_the_requested_share():
    visible = random_patch_grid(5, 4, 0.25, torch.Generator().manual_seed(1))
    assert visible.shape == (5, 4, 4)
    assert (visible.reshape(5, -1).sum(dim=1) == 12).all()
    assert torch.equal(visible, random_patch_grid(5, 4, 0.25, torch.Generator().manual_seed(1)))
    cells = patch_grid_to_cells(visible, 8)
    assert cells.shape == (5, 8, 8)
    # each patch covers a 2x2 block of cells
    assert torch.equal(cells[:, ::2, ::2], visible.float())
    assert torch.equal(cells[:, 1::2, 1::2], visible.float())
    with pytest.raises(ValueError):
        random_patch_grid(1, 4, 1.0, torch.Generator())


def test_max_activation_hides_the_strongest_valid_cells():
    template = torch.zeros(1, 2, 3, 3)
    energy = torch.arange(9.0).reshape(3, 3)
    template[0, 0] = energy.sqrt()
    weight = max_activation_mask(template, 1 / 3)
    expected = torch.ones(3, 3)
    expected.view(-1)[[6, 7, 8]] = 0.0
    assert torch.equal(weight[0], expected)
    valid = torch.ones(1, 3, 3)
    valid[0, 2, 2] = 0.0  # the strongest cell is outside the view: never counted, stays zero
    weight = max_activation_mask(template, 0.25, valid)
    expected = torch.ones(3, 3)
    expected.view(-1)[[6, 7, 8]] = 0.0
    assert torch.equal(weight[0], expected)

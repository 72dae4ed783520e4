"""The grid_sample policy: pixel i covers [i, i+1), align_corners=False, circular seam."""

from __future__ import annotations

import pytest
import torch

from geodistill.geometry.grid import normalized_to_uv, sample_image, sample_panorama, uv_to_normalized
from geodistill.geometry.shapes import check_shape


def test_pixel_centres_sample_exact_values():
    image = torch.rand(2, 3, 5, 7)
    rows, cols = torch.meshgrid(torch.arange(5.0), torch.arange(7.0), indexing="ij")
    uv = torch.stack([cols + 0.5, rows + 0.5], dim=-1).expand(2, 5, 7, 2)  # B,5,7,2
    assert torch.allclose(sample_image(image, uv), image, atol=1e-6)


def test_normalized_round_trip_and_edges():
    uv = torch.tensor([[0.0, 0.0], [7.0, 5.0], [3.5, 2.5]])
    normalized = uv_to_normalized(uv, (5, 7))
    assert normalized.tolist() == [[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]
    assert torch.allclose(normalized_to_uv(normalized, (5, 7)), uv)


def test_sample_image_between_pixels_and_outside():
    image = torch.tensor([[[[0.0, 2.0], [4.0, 6.0]]]])
    values = sample_image(image, torch.tensor([[[1.0, 0.5], [1.0, 1.0], [-5.0, 0.5]]]))
    assert values.tolist() == [[[1.0, 3.0, 0.0]]]


def test_panorama_wraps_across_the_seam():
    pano = torch.tensor([[[[4.0, 0.0, 0.0, 0.0, 0.0, 8.0]]]])
    seam = uv_to_normalized(torch.tensor([[[[0.0, 0.5], [6.0, 0.5], [0.5, 0.5]]]]), (1, 6))
    assert sample_panorama(pano, seam).flatten().tolist() == pytest.approx([6.0, 6.0, 4.0])
    unwrapped = sample_panorama(pano, seam, wrap_seam=False).flatten().tolist()
    assert unwrapped == pytest.approx([2.0, 4.0, 4.0])  # the reference blends in zeros beyond the seam


def test_panorama_wrapping_matches_plain_sampling_inside():
    pano = torch.rand(2, 4, 6, 12, dtype=torch.float64)
    grid = torch.rand(2, 3, 5, 2, dtype=torch.float64) * 1.6 - 0.8
    assert torch.allclose(sample_panorama(pano, grid), sample_panorama(pano, grid, wrap_seam=False))


def test_check_shape():
    assert check_shape(torch.zeros(2, 3, 4, 8), "B 3 H W") == {"B": 2, "H": 4, "W": 8}
    assert check_shape(torch.zeros(5, 6, 2), "... 2") == {}
    assert check_shape(torch.zeros(4, 4), "N N") == {"N": 4}
    with pytest.raises(ValueError, match=r"pano must have shape \(B 3 H W\), got \(2, 1, 4, 8\)"):
        check_shape(torch.zeros(2, 1, 4, 8), "B 3 H W", "pano")
    with pytest.raises(ValueError, match="axis N"):
        check_shape(torch.zeros(4, 5), "N N")
    with pytest.raises(ValueError):
        check_shape(torch.zeros(3), "A B")

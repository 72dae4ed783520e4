"""The CCVPE base's polar aerial descriptor: ray geometry, bilinear sampling, and turning with the aerial view."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from geodistill.models.polar_descriptor import (
    PolarAerialDescriptor,
    bilinear_taps,
    bin_azimuths_deg,
    ray_offsets_cells,
)


def _sample(features: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """(B,F,h,w) features sampled at every cell moved by one (2,) offset, through bilinear_taps."""
    _, _, height, width = features.shape
    pad = int(offset.abs().max().ceil()) + 1
    index, weights = bilinear_taps(offset[None], height, width, pad)
    padded = F.pad(features, (pad, pad, pad, pad)).flatten(-2)
    taps = padded[..., index.flatten()].view(*features.shape[:2], 4, height * width)
    return (taps * weights[0][:, None]).sum(dim=-2).view_as(features)


def test_bin_azimuths_follow_the_panorama_columns():
    # bin j of a heading-0 panorama covers columns [jW/N, (j+1)W/N): azimuths -180 + 360 (j + 1/2) / N
    assert bin_azimuths_deg(4).tolist() == [-135.0, -45.0, 45.0, 135.0]


@pytest.mark.parametrize("azimuth, expected", [(0.0, (0.0, -2.0)), (90.0, (2.0, 0.0)), (180.0, (0.0, 2.0)),
                                               (-90.0, (-2.0, 0.0))])
def test_rays_point_clockwise_from_north(azimuth, expected):
    # north is up (row - 1), east is right (column + 1); 5 m at 2.5 m per cell is 2 cells
    offset = ray_offsets_cells(torch.tensor([azimuth]), torch.tensor([5.0]), 2.5)[0, 0]
    assert offset.tolist() == pytest.approx(expected, abs=1e-9)


def test_a_ray_reads_what_lies_in_its_direction():
    features = torch.zeros(1, 1, 9, 9)
    features[0, 0, 1, 7] = 1.0  # three cells north and three east of the centre cell (4, 4)
    for azimuth, seen in ((45.0, 1.0), (-45.0, 0.0), (135.0, 0.0)):
        offset = ray_offsets_cells(torch.tensor([azimuth]), torch.tensor([3 * 2 ** 0.5]), 1.0)[0, 0]
        assert float(_sample(features, offset)[0, 0, 4, 4]) == pytest.approx(seen, abs=1e-6)
    halfway = _sample(features, torch.tensor([2.5, -3.0], dtype=torch.float64))  # between two cells
    assert float(halfway[0, 0, 4, 4]) == pytest.approx(0.5) and float(halfway[0, 0, 4, 5]) == pytest.approx(0.5)


def test_samples_outside_the_map_are_zero():
    features = torch.ones(1, 2, 5, 5)
    out = _sample(features, torch.tensor([0.0, -3.0], dtype=torch.float64))
    assert out[:, :, :3].abs().max() == 0 and torch.equal(out[:, :, 3:], torch.ones(1, 2, 2, 5))


def test_turning_the_aerial_view_rolls_the_descriptor_bins():
    """A map turned 90° clockwise shows at azimuth φ + 90° what it showed at φ: 4 of 16 bins later, per cell."""
    torch.manual_seed(0)
    descriptor = PolarAerialDescriptor(3, 5, bins=16, radii_m=[0.0, 2.0, 5.0]).double()
    features = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    cell_m = torch.tensor([1.0, 1.0], dtype=torch.float64)
    turned = torch.rot90(features, k=-1, dims=(-2, -1))  # clockwise: north goes east
    out, out_turned = descriptor(features, cell_m), descriptor(turned, cell_m)
    assert out.shape == (2, 5, 16, 8, 8)
    expected = torch.rot90(torch.roll(out, 4, dims=2), k=-1, dims=(-2, -1))
    torch.testing.assert_close(out_turned, expected)
    assert not torch.allclose(out_turned, torch.rot90(out, k=-1, dims=(-2, -1)))  # the check can fail


def test_samples_of_different_ground_resolution_get_their_own_rays():
    torch.manual_seed(1)
    descriptor = PolarAerialDescriptor(2, 3, bins=8, radii_m=[0.0, 4.0]).double()
    features = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    both = descriptor(features, torch.tensor([1.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(both[1:], descriptor(features[1:], torch.tensor([2.0], dtype=torch.float64)))
    torch.testing.assert_close(both[:1], descriptor(features[:1], torch.tensor([1.0], dtype=torch.float64)))


def test_radii_must_be_given_and_not_negative():
    with pytest.raises(ValueError, match="polar_radii_m"):
        PolarAerialDescriptor(2, 3, bins=8, radii_m=[])
    with pytest.raises(ValueError, match="polar_radii_m"):
        PolarAerialDescriptor(2, 3, bins=8, radii_m=[-1.0, 2.0])

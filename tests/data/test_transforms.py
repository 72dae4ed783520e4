"""FoV and heading transforms: masks, zeroed columns, heading sign, seeding."""

from __future__ import annotations

import pytest
import torch

from geodistill import keys
from geodistill.data.collate import assemble_sample
from geodistill.data.transforms import Compose, FixedFov, RandomFov, RandomHeading, reseed_transform, rotate_sample
from geodistill.geometry.panorama import roll_panorama


def make_sample(width: int = 72) -> dict:
    pano = torch.rand(3, width // 2, width, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    return assemble_sample(pano, torch.rand(3, 8, 8), 0.5, (4.0, 4.0), (0.0, 0.0), None, None)


def test_fixed_fov_masks_and_zeroes_the_hidden_columns():
    sample = make_sample()
    original = sample[keys.PANO].clone()
    out = FixedFov(90.0, center_deg=0.0)(sample)
    mask = out[keys.FOV_MASK]
    assert mask.dtype == torch.bool and int(mask.sum()) == 18  # 90/360 of 72 columns
    assert bool(mask[36]) and bool(mask[35]) and not bool(mask[0]) and not bool(mask[71])  # centred on u = W/2
    assert torch.equal(out[keys.PANO][..., mask], original[..., mask])
    assert bool((out[keys.PANO][..., ~mask] == 0).all())
    assert torch.equal(sample[keys.PANO], original) and bool(sample[keys.FOV_MASK].all())  # input untouched


def test_random_fov_is_seeded_and_within_range():
    draws = []
    for _ in range(2):
        transform = RandomFov(180.0, 240.0, generator=torch.Generator().manual_seed(4))
        draws.append([transform(make_sample())[keys.FOV_MASK] for _ in range(5)])
    for first, second in zip(*draws):
        assert torch.equal(first, second)
        assert 180 / 360 * 72 - 1 <= int(first.sum()) <= 240 / 360 * 72 + 1
    assert any(not torch.equal(draws[0][0], other) for other in draws[0][1:])


def test_heading_sign_matches_roll_panorama():
    sample = make_sample()
    sample[keys.PANO][:, :, 36] = 1.0  # a marker on the centre line (u = W/2)
    turned = rotate_sample(sample, 90.0)
    assert turned[keys.HEADING_GT].item() == 90.0
    assert bool((turned[keys.PANO][:, :, 18] == 1.0).all())  # camera turned clockwise: marker now at u = W/4
    assert rotate_sample(turned, -135.0)[keys.HEADING_GT].item() == pytest.approx(315.0)


def test_random_heading_rolls_by_the_heading_it_reports():
    transform = RandomHeading(45.0, generator=torch.Generator().manual_seed(1))
    sample = make_sample()
    for _ in range(4):
        out = transform(sample)
        heading = out[keys.HEADING_GT].item()
        delta = heading if heading < 180 else heading - 360
        assert abs(delta) <= 45.0
        assert torch.allclose(out[keys.PANO], roll_panorama(sample[keys.PANO], delta), atol=1e-5)


def test_heading_after_fov_rolls_the_mask_too():
    sample = FixedFov(90.0)(make_sample())
    turned = rotate_sample(sample, 90.0)
    assert torch.equal(turned[keys.FOV_MASK], torch.roll(sample[keys.FOV_MASK], -18))
    assert bool((turned[keys.PANO][..., ~turned[keys.FOV_MASK]] == 0).all())


def test_compose_and_reseed():
    transform = Compose([RandomHeading(180.0), RandomFov(200.0, 200.0)])
    reseed_transform(transform, 10)
    first = [transform(make_sample())[keys.HEADING_GT].item() for _ in range(3)]
    reseed_transform(transform, 10)
    assert [transform(make_sample())[keys.HEADING_GT].item() for _ in range(3)] == first
    reseed_transform(transform, 11)
    assert [transform(make_sample())[keys.HEADING_GT].item() for _ in range(3)] != first


def test_photometric_copies_are_few_fixed_images_per_sample():
    from geodistill.data.transforms import PhotometricCopies

    transform = PhotometricCopies(copies=3, seed=5)
    base = FixedFov(180.0)(make_sample())
    base[keys.INDEX] = 4
    seen_pano, seen_pairs = set(), set()
    for draw in range(40):                                            # re-seeded per epoch, as the training data does
        reseed_transform(transform, draw)
        out = transform(base)
        assert out[keys.PANO].shape == base[keys.PANO].shape and float(out[keys.SAT].min()) >= 0
        assert float(out[keys.SAT].max()) <= 1 and not torch.equal(out[keys.SAT], base[keys.SAT])
        assert bool((out[keys.PANO][..., ~base[keys.FOV_MASK]] == 0).all())       # hidden columns stay black
        seen_pano.add(out[keys.PANO].numpy().tobytes())
        seen_pairs.add((out[keys.PANO].numpy().tobytes(), out[keys.SAT].numpy().tobytes()))
    assert len(seen_pano) == len(seen_pairs) == 3                     # three fixed copies, each a fixed pair
    other = dict(base, **{keys.INDEX: 5})
    reseed_transform(transform, 0)
    assert transform(other)[keys.PANO].numpy().tobytes() not in seen_pano   # another sample: other copies
    assert torch.equal(base[keys.PANO], FixedFov(180.0)(make_sample())[keys.PANO])  # the input is not modified

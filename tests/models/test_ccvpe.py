"""The CCVPE base: azimuth equivariance, descriptor masking, heading read-out, priors and losses."""

from __future__ import annotations

import math

import pytest
import torch

from geodistill import keys
from geodistill.config import CcvpeConfig, ModelConfig
from geodistill.geometry.fov import fov_column_mask
from geodistill.geometry.panorama import roll_panorama
from geodistill.losses import roll_cross_entropy
from geodistill.models.azimuth_matching import (
    angle_distance_deg,
    bin_visibility,
    heading_to_vector,
    heading_vectors,
    match_volume,
    prior_shift_mask,
    read_heading,
    shift_headings_deg,
    vector_to_heading_deg,
)
from geodistill.models.ccvpe import CcvpeNet
from geodistill.models.factory import build_localizer

PANO_HW = (128, 256)  # the equivariance check runs at least at 256 x 128


def _config(**ccvpe) -> ModelConfig:
    return ModelConfig(architecture="ccvpe", backbone="tiny_cnn", pretrained=False, allow_random_init=True,
                       ccvpe=CcvpeConfig(match_strides=[16, 8], descriptor_channels=[8, 8], output_stride=4,
                                         decoder_width=32, **ccvpe))


@pytest.fixture(scope="module")
def net() -> CcvpeNet:
    torch.manual_seed(0)
    model = build_localizer(_config())
    assert isinstance(model, CcvpeNet)
    return model.double().eval()


def _batch(batch_size: int = 2, seed: int = 1) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        keys.SAT: torch.rand(batch_size, 3, 128, 128, generator=generator, dtype=torch.float64),
        keys.PANO: torch.rand(batch_size, 3, *PANO_HW, generator=generator, dtype=torch.float64),
        keys.METERS_PER_PIXEL: torch.full((batch_size,), 0.5, dtype=torch.float64),
    }


@torch.no_grad()
def test_rolling_the_panorama_rolls_the_descriptor_and_turns_the_heading(net):
    batch = _batch()
    stride_px = PANO_HW[1] // net.ccvpe.azimuth_bins          # one azimuth bin of the encoder
    assert stride_px == 16
    for bins_rolled in (1, 3):
        turn_deg = bins_rolled * 360.0 / net.ccvpe.azimuth_bins
        rolled = dict(batch, **{keys.PANO: roll_panorama(batch[keys.PANO], turn_deg)})
        descriptors = net.encode_ground(batch[keys.PANO])
        rolled_descriptors = net.encode_ground(rolled[keys.PANO])
        for original, turned in zip(descriptors, rolled_descriptors):
            assert not torch.allclose(original, torch.roll(original, -1, dims=-1))  # the check can fail
            torch.testing.assert_close(turned, torch.roll(original, -bins_rolled, dims=-1), atol=1e-9, rtol=1e-9)
        out, out_rolled = net(batch), net(rolled)
        torch.testing.assert_close(out_rolled[keys.SCORES], out[keys.SCORES], atol=1e-9, rtol=1e-9)
        torch.testing.assert_close(out_rolled[keys.XY_MAX], out[keys.XY_MAX])
        moved = angle_distance_deg(out_rolled[keys.HEADING], out[keys.HEADING] + turn_deg)
        assert float(moved.max()) < 1e-6
        torch.testing.assert_close(out_rolled[keys.HEADING_CONFIDENCE], out[keys.HEADING_CONFIDENCE])


@torch.no_grad()
def test_hidden_pixels_change_nothing(net):
    batch = _batch()
    visible = fov_column_mask(PANO_HW[1], torch.tensor([180.0, 120.0]), torch.tensor([30.0, -100.0]))
    assert visible.shape == (2, PANO_HW[1]) and 0 < int(visible.sum()) < visible.numel()
    other = batch[keys.PANO].clone()
    other[..., ~visible[0]] = 0.0
    noise = torch.rand(other.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    changed = torch.where(visible[:, None, None, :], batch[keys.PANO], noise)
    out = net(batch, fov_mask=visible)
    out_changed = net(dict(batch, **{keys.PANO: changed}), fov_mask=visible)
    for key in (keys.SCORES, keys.HEADING, keys.ORIENTATION_FIELD):
        torch.testing.assert_close(out_changed[key], out[key], atol=0.0, rtol=0.0)
    assert not torch.allclose(net(batch)[keys.SCORES], out[keys.SCORES])  # the mask does change the view


def test_masked_azimuths_do_not_contribute_to_the_matching():
    generator = torch.Generator().manual_seed(3)
    ground = torch.randn(2, 5, 8, generator=generator, dtype=torch.float64)
    aerial = torch.randn(2, 5, 8, 3, 4, generator=generator, dtype=torch.float64)
    visible = torch.tensor([[1, 1, 0, 0, 1, 1, 1, 0], [0, 1, 1, 1, 1, 0, 0, 0]], dtype=torch.float64)
    volume = match_volume(ground, aerial, visible, shifts_per_bin=1)
    # the descriptor parts of hidden azimuths can be anything
    scrambled = ground + 100.0 * (1 - visible)[:, None] * torch.randn(ground.shape, generator=generator,
                                                                     dtype=torch.float64)
    torch.testing.assert_close(match_volume(scrambled, aerial, visible, shifts_per_bin=1), volume)
    # one entry by hand: roll k, cell (y, x), cosine over the visible bins only
    b, k, y, x = 1, 3, 2, 1
    shown = torch.roll(visible[b], k) > 0
    g = torch.roll(ground[b], k, dims=-1)[:, shown].flatten()
    a = aerial[b, :, :, y, x][:, shown].flatten()
    assert float(volume[b, k, y, x]) == pytest.approx(float(g @ a / (g.norm() * a.norm())), abs=1e-12)
    # fractional rolls keep the hidden bins out too
    torch.testing.assert_close(match_volume(scrambled, aerial, visible, 2), match_volume(ground, aerial, visible, 2))


def test_bin_visibility_follows_the_majority_of_columns():
    mask = torch.zeros(1, 32, dtype=torch.bool)
    mask[0, 4:14] = True  # bins of 4 columns: bin 1 all, bin 2 all, bin 3 half (12,13 of 12..15) -> visible
    assert bin_visibility(mask, 1, 8, torch.device("cpu")).tolist() == [[0, 1, 1, 1, 0, 0, 0, 0]]


@pytest.mark.parametrize("heading", [0.0, 37.5, 181.0, 359.0])
def test_heading_read_out_round_trips(heading):
    field = torch.zeros(1, 2, 5, 6)
    field[0, :, 3, 2] = heading_to_vector(torch.tensor([heading]))[0] * 0.7
    read, length = read_heading(field, torch.tensor([[3.2, 1.8]]))
    assert float(angle_distance_deg(read, torch.tensor(heading))) < 1e-4
    assert float(length) == pytest.approx(0.7, abs=1e-6)


@pytest.mark.parametrize("roll", [0, 5, 17, 31])
def test_a_volume_peaked_at_one_roll_reads_that_rolls_heading(roll):
    volume = torch.full((1, 32, 2, 2), -1.0)
    volume[:, roll] = 1.0
    vectors = heading_vectors(volume, temperature=0.01, allowed=None)
    expected = float(shift_headings_deg(32)[roll])
    assert float(angle_distance_deg(vector_to_heading_deg(vectors)[0, 0, 0], torch.tensor(expected))) < 1e-3
    assert float(vectors.norm(dim=1).min()) == pytest.approx(1.0, abs=1e-3)


def test_prior_keeps_the_rolls_inside_its_window():
    allowed = prior_shift_mask(16, torch.tensor([350.0, 90.0]), torch.tensor([45.0, 0.0]), torch.device("cpu"))
    headings = shift_headings_deg(16)
    assert set(headings[allowed[0]].tolist()) == {315.0, 337.5, 0.0, 22.5}
    assert headings[allowed[1]].tolist() == [90.0]  # a known heading keeps its nearest roll only


@torch.no_grad()
def test_model_heading_respects_the_prior(net):
    batch = _batch()
    known = dict(batch, **{keys.HEADING_PRIOR: torch.tensor([123.0, 301.5]), keys.HEADING_RANGE: torch.zeros(2)})
    assert net(known)[keys.HEADING].tolist() == pytest.approx([123.0, 301.5], abs=1e-6)
    window = dict(batch, **{keys.HEADING_PRIOR: torch.tensor([10.0, 200.0]),
                            keys.HEADING_RANGE: torch.tensor([45.0, 45.0])})
    distance = angle_distance_deg(net(window)[keys.HEADING], torch.tensor([10.0, 200.0], dtype=torch.float64))
    assert float(distance.max()) <= 45.0 + 1e-6


def test_roll_cross_entropy_targets_the_two_nearest_rolls():
    logits = torch.zeros(1, 8)
    logits[0, 1], logits[0, 2] = 5.0, 5.0  # rolls at 45 and 90 degrees
    at_between = roll_cross_entropy(logits, torch.tensor([67.5]))
    at_far = roll_cross_entropy(logits, torch.tensor([247.5]))
    assert float(at_between) < float(at_far)
    assert float(roll_cross_entropy(logits, torch.tensor([67.5 + 360.0]))) == pytest.approx(float(at_between))


def test_supervised_loss_trains_towards_the_true_pose():
    torch.manual_seed(0)
    model = CcvpeNet(_config())
    batch = {**{k: v.float() for k, v in _batch(2, seed=4).items()},
             keys.XY_GT: torch.tensor([[10.0, -5.0], [-12.0, 8.0]]), keys.HEADING_GT: torch.tensor([40.0, 250.0])}
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=3e-3)
    first = None
    for _ in range(25):
        losses = model.loss(model(batch), batch)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        first = first if first is not None else {k: float(v.detach().mean()) for k, v in losses.items()}
    with torch.no_grad():
        last = model.loss(model(batch), batch)
    assert float(last["location"].mean()) < first["location"] - 1.0  # nats, from log(32 x 32) = 6.9
    assert float(last["infonce"].mean()) < first["infonce"]
    assert float(last["orientation"].mean()) < first["orientation"]
    assert set(last) == {"total", "location", "infonce", "orientation"}


def test_backbone_without_the_ground_stride_is_a_clear_error():
    with pytest.raises(ValueError, match="ground_stride=32"):
        CcvpeNet(_config(ground_stride=32))
    assert math.isclose(float(shift_headings_deg(16)[4]), 90.0)


def test_efficientnet_b0_needs_a_local_weight_file_and_serves_the_ccvpe_base(tmp_path):
    from geodistill.errors import WeightsUnavailableError
    from geodistill.models.backbones import build_backbone

    with pytest.raises(WeightsUnavailableError, match="weights_path"):
        build_backbone("efficientnet_b0", pretrained=True)
    torch.manual_seed(0)
    random_b0 = build_backbone("efficientnet_b0", pretrained=False)
    assert random_b0.strides == [2, 4, 8, 16, 32] and random_b0.channels[-2:] == [112, 320]
    from safetensors.torch import save_file

    save_file({f"{k}": v.contiguous() for k, v in random_b0.net.state_dict().items()}, str(tmp_path / "b0.safetensors"))
    loaded = build_backbone("efficientnet_b0", weights_path=str(tmp_path / "b0.safetensors"))
    image = torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(image)[-1], random_b0.eval()(image)[-1])


@torch.no_grad()
def test_the_polar_descriptor_keeps_the_heading_equivariance():
    torch.manual_seed(0)
    model = build_localizer(_config(aerial_descriptor="polar", polar_radii_m=[0.0, 6.0, 15.0])).double().eval()
    batch = _batch()
    turn_deg = 3 * 360.0 / model.ccvpe.azimuth_bins
    out = model(batch)
    out_rolled = model(dict(batch, **{keys.PANO: roll_panorama(batch[keys.PANO], turn_deg)}))
    torch.testing.assert_close(out_rolled[keys.SCORES], out[keys.SCORES], atol=1e-9, rtol=1e-9)
    assert float(angle_distance_deg(out_rolled[keys.HEADING], out[keys.HEADING] + turn_deg).max()) < 1e-6


@torch.no_grad()
def test_match_residual_starts_as_the_matching_alone():
    torch.manual_seed(0)
    model = build_localizer(_config(match_residual=True)).double().eval()
    out = model(_batch())
    logits = out[keys.SCORES]
    matched = [torch.nn.functional.interpolate(out[f"ccvpe/match/{i}"][:, None], size=logits.shape[-2:],
                                               mode="bilinear", align_corners=False)[:, 0]
               for i in range(len(model.ccvpe.match_strides))]
    torch.testing.assert_close(logits, torch.stack(matched).mean(dim=0) / model.ccvpe.match_temperature)


@pytest.mark.parametrize("u, v", [(5.0, 9.0), (64.0, 64.0), (100.5, 30.25), (127.0, 1.0)])
def test_a_label_targets_the_heatmap_cell_under_its_tile_pixel(net, u, v):
    """xy label -> the location target cell: the cell whose tile pixels [c·s, (c+1)·s) hold the label's pixel, and
    back: the position read at that cell lies within half a cell of the label."""
    from geodistill.models.prediction import cells_to_xy, tile_uv_to_xy, xy_to_cells

    batch = _batch(1)
    with torch.no_grad():
        out = net(batch)
    stride = 128 / out[keys.SCORES].shape[-1]
    assert stride == net.ccvpe.output_stride
    xy = tile_uv_to_xy(torch.tensor([[u, v]], dtype=torch.float64), 128, batch[keys.METERS_PER_PIXEL])
    cell = xy_to_cells(xy, tuple(out[keys.SCORES].shape[-2:]), out[keys.CELL_M]).round()
    assert cell[0].tolist() == [min(v // stride, 31), min(u // stride, 31)]
    back = cells_to_xy(cell, tuple(out[keys.SCORES].shape[-2:]), out[keys.CELL_M])
    assert float((back - xy).abs().max()) <= 0.5 * float(out[keys.CELL_M][0]) + 1e-9

import math
import time

import pytest
import torch
import torch.nn.functional as F

from geodistill import keys
from geodistill.config import ModelConfig
from geodistill.geometry.panorama import roll_panorama
from geodistill.models.localizer import LocalizerNet


def _tiny_config(**overrides) -> ModelConfig:
    values = dict(backbone="tiny_cnn", pretrained=False, decoder_width=32, level_channels=[16, 8, 8])
    values.update(overrides)
    return ModelConfig(**values)


def _batch(size=2, sat=128, pano=(64, 128)):
    torch.manual_seed(0)
    return {
        keys.SAT: torch.rand(size, 3, sat, sat),
        keys.PANO: torch.rand(size, 3, *pano),
        keys.METERS_PER_PIXEL: torch.full((size,), 0.57),
    }


@pytest.mark.bench
def test_forward_on_tiny_inputs_is_fast():
    net = LocalizerNet(_tiny_config()).eval()
    batch = _batch()
    with torch.no_grad():
        net(batch)  # warm-up
        timings = []
        for _ in range(3):  # best of three
            start = time.perf_counter()
            net(batch)
            timings.append(time.perf_counter() - start)
    assert min(timings) < 1.0, timings


def test_forward_on_tiny_inputs_is_complete():
    net = LocalizerNet(_tiny_config()).eval()
    with torch.no_grad():
        out = net(_batch())
    assert out["scores/0"].shape == (2, 11, 11) and out["scores/2"].shape == (2, 40, 40)  # 16², 64² levels
    assert torch.equal(out[keys.SCORES], out["scores/2"])
    for key, shape in [(keys.PROB, (2, 40, 40)), (keys.LOG_PROBS, (2, 40, 40)), (keys.UV_MAX, (2, 2)),
                       (keys.XY_MAX, (2, 2)), (keys.UV_EXPECTATION, (2, 2)), (keys.XY_EXPECTATION, (2, 2)),
                       (keys.CONFIDENCE, (2,)), (keys.CELL_M, (2,)), (keys.F_SAT, (2, 8, 64, 64)),
                       (keys.F_BEV, (2, 8, 25, 25)), (keys.VALID_BEV, (2, 25, 25))]:
        assert tuple(out[key].shape) == shape, key
    assert torch.allclose(out[keys.CELL_M], torch.full((2,), 0.57 * 128 / 64))
    assert out[keys.SCORES].abs().max() <= 1 + 1e-5


def test_encode_then_localize_equals_forward_and_all_pairs_diagonal():
    net = LocalizerNet(_tiny_config()).eval()
    batch = _batch(size=3)
    with torch.no_grad():
        out = net(batch)
        again = net.localize(net.encode_satellite(batch[keys.SAT]), net.encode_ground(batch[keys.PANO]), batch)
        distances = net.all_pairs_distance(batch)
    assert torch.allclose(out[keys.SCORES], again[keys.SCORES])
    assert set(distances) == {0, 2}
    for level in (0, 2):
        best = 2 - 2 * out[f"scores/{level}"].flatten(1).amax(dim=1)
        assert distances[level].shape == (3, 3)
        assert torch.allclose(distances[level].diagonal(), best, atol=1e-5)


def test_full_fov_mask_changes_nothing_and_a_partial_one_does():
    net = LocalizerNet(_tiny_config()).eval()
    batch = _batch()
    full = torch.ones(2, 128, dtype=torch.bool)
    half = full.clone()
    half[:, :64] = False
    with torch.no_grad():
        plain = net(batch)
        masked_full = net(batch, fov_mask=full)
        masked_half = net(batch, fov_mask=half)
    assert torch.allclose(plain[keys.SCORES], masked_full[keys.SCORES], atol=1e-5)
    assert not torch.allclose(plain[keys.SCORES], masked_half[keys.SCORES], atol=1e-3)
    west_half = masked_half[keys.F_BEV][:, :, :, :10]  # west of the camera is invisible (columns < W/2)
    assert west_half.abs().max() == 0
    with pytest.raises(ValueError, match="fov_mask"):
        net(batch, fov_mask=torch.ones(2, 64, dtype=torch.bool))


def test_frozen_backbone_trains_only_the_decoders():
    net = LocalizerNet(_tiny_config())
    net.train()
    assert not net.backbone.training and net.sat_decoder.training
    trainable = {id(p) for p in net.trainable_parameters()}
    assert trainable == {id(p) for m in (net.sat_decoder, net.pano_decoder) for p in m.parameters()}
    distances = net.all_pairs_distance(_batch())
    (distances[0].sum() + distances[2].sum()).backward()
    assert all(p.grad is None for p in net.backbone.parameters())
    assert all(p.grad is not None for p in net.trainable_parameters())
    unfrozen = LocalizerNet(_tiny_config(freeze_backbone=False))
    assert len(unfrozen.trainable_parameters()) > len(net.trainable_parameters())


def test_satellite_layout_pads_symmetrically_or_resizes():
    net = LocalizerNet(_tiny_config())  # input multiple 16
    assert net.satellite_layout(128) == (128, "pad", 128.0)
    assert net.satellite_layout(120) == (128, "pad", 128.0)
    assert net.satellite_layout(121) == (128, "resize", 121.0)
    batch = _batch(sat=120)
    with torch.no_grad():
        out = net.eval()(batch)
    assert out[keys.F_SAT].shape[-1] == 64
    assert torch.allclose(out[keys.CELL_M], torch.full((2,), 0.57 * 128 / 64))


def test_faithful_options():
    batch = _batch()
    faithful = LocalizerNet(_tiny_config(metric_conversion="faithful", bev_grid="faithful")).eval()
    with torch.no_grad():
        out = faithful(batch)
    assert torch.allclose(out[keys.CELL_M], torch.full((2,), 0.57 * 128 / 64))  # S/A
    per_level = faithful.templates(faithful.encode_satellite(batch[keys.SAT]),
                                   faithful.encode_ground(batch[keys.PANO]), batch)
    assert torch.allclose(per_level[0]["bev_cell_m"], torch.full((2,), 0.57 * 8))  # 2^(3-0) px
    assert torch.allclose(per_level[2]["bev_cell_m"], torch.full((2,), 0.57 * 2))
    symmetric = LocalizerNet(_tiny_config(normalization="symmetric"))
    assert torch.allclose(symmetric._normalize(torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1)).flatten(),
                          torch.tensor([-1.0, 0.0, 1.0]))


def _render_panorama_features(f_sat, camera_xy_m, camera_height_m, pano_hw):
    """Panorama feature map seen from a camera standing on the satellite feature map (1 m cells, flat ground)."""
    height, width = pano_hw
    side = f_sat.shape[-1]
    v = torch.arange(height, dtype=torch.float64) + 0.5
    u = torch.arange(width, dtype=torch.float64) + 0.5
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    bearing = 2 * math.pi * uu / width - math.pi
    below = vv > height / 2
    distance = camera_height_m * torch.tan(math.pi * (1 - vv / height)).clamp(min=0)
    distance = torch.where(below, distance, torch.full_like(distance, 1e6))
    east = camera_xy_m[0] + distance * torch.sin(bearing)
    north = camera_xy_m[1] + distance * torch.cos(bearing)
    x = 2 * (side / 2 + east) / side - 1
    y = 2 * (side / 2 - north) / side - 1
    grid = torch.stack([x, y], dim=-1).float().unsqueeze(0)
    return F.grid_sample(f_sat, grid, align_corners=False, padding_mode="zeros")


@pytest.mark.parametrize("with_fov", [False, True])
def test_camera_position_is_recovered_from_geometry(with_fov):
    """Features rendered from a known camera position must correlate best exactly there (pins signs and units)."""
    torch.manual_seed(3)
    f_sat = F.interpolate(torch.randn(1, 8, 8, 8), size=(64, 64), mode="bicubic", align_corners=False)
    camera_xy = (5.0, -3.0)
    f_pano = _render_panorama_features(f_sat, camera_xy, 2.0, (128, 256))
    net = LocalizerNet(_tiny_config(levels=[2], template_crop=0.375)).eval()  # c = 24, score map 41², p0 = 20
    batch = {keys.SAT: torch.zeros(1, 3, 64, 64), keys.METERS_PER_PIXEL: torch.tensor([1.0]),
             keys.CAMERA_HEIGHT_M: torch.tensor([2.0])}
    fov_mask = None
    if with_fov:
        fov_mask = torch.zeros(1, 256, dtype=torch.bool)
        fov_mask[:, 64:192] = True  # 180° centred on north
    out = net.localize([f_sat], [f_pano], batch, fov_mask)
    assert out[keys.SCORES].shape == (1, 41, 41)
    assert out[keys.XY_MAX].tolist() == [[5.0, -3.0]]
    assert out[keys.UV_MAX].tolist() == [[37.0, 35.0]]
    assert out[keys.SCORES].max() > 0.9


def test_shared_backbone_taps_give_the_same_features():
    net = LocalizerNet(_tiny_config()).eval()
    batch = _batch()
    mask = torch.ones(2, 128, dtype=torch.bool)
    mask[:, 100:] = False
    with torch.no_grad():
        direct = net.encode_ground(batch[keys.PANO], mask)
        shared = net.encode_ground(batch[keys.PANO], taps=net.ground_taps(batch[keys.PANO], mask))
        sat = net.encode_satellite(batch[keys.SAT], taps=net.satellite_taps(batch[keys.SAT]))
    assert all(torch.equal(a, b) for a, b in zip(direct, shared))
    assert all(torch.equal(a, b) for a, b in zip(net.encode_satellite(batch[keys.SAT]), sat))


def test_per_sample_camera_height_reaches_the_bev_template():
    net = LocalizerNet(_tiny_config(camera_height_m=2.0)).eval()
    batch = _batch()
    batch[keys.PANO] = batch[keys.PANO][:1].expand(2, -1, -1, -1)  # one panorama at two camera heights
    batch[keys.SAT] = batch[keys.SAT][:1].expand(2, -1, -1, -1)
    heights = (1.2, 3.5)
    with torch.no_grad():
        both = net({**batch, keys.CAMERA_HEIGHT_M: torch.tensor(heights)})
        for index, height in enumerate(heights):  # each sample as if its height were the configured default
            net.config.camera_height_m = height
            alone = net({key: value[index:index + 1] for key, value in batch.items()})
            torch.testing.assert_close(both[keys.F_BEV][index], alone[keys.F_BEV][0])
            torch.testing.assert_close(both[keys.SCORES][index], alone[keys.SCORES][0])
    assert not torch.allclose(both[keys.F_BEV][0], both[keys.F_BEV][1], atol=1e-3)


def test_a_turned_panorama_gives_the_north_up_template_when_its_heading_is_passed():
    net = LocalizerNet(_tiny_config()).eval()
    batch = _batch()
    with torch.no_grad():
        f_sat = net.encode_satellite(batch[keys.SAT])
        f_pano = net.encode_ground(batch[keys.PANO])
    width = f_pano[-1].shape[-1]
    shift = width // 8  # whole feature columns at the finest level: the roll is exact there
    heading = 360.0 * shift / width
    # the camera turned clockwise by `heading`: what was at the centre line moves left
    turned = [torch.roll(f, -shift * f.shape[-1] // width, dims=-1) for f in f_pano]
    torch.testing.assert_close(turned[-1], roll_panorama(f_pano[-1], heading))  # as data.heading_noise_deg turns
    view = torch.zeros(2, 128, dtype=torch.bool)
    view[:, 40:100] = True  # a limited view, turned with the panorama
    turned_view = torch.roll(view, -shift * 128 // width, dims=-1)
    finest = net.levels[-1]
    north = net.templates(f_sat, f_pano, batch, view)[finest]
    told = net.templates(f_sat, turned, {**batch, keys.HEADING_GT: torch.full((2,), heading)}, turned_view)[finest]
    untold = net.templates(f_sat, turned, batch, turned_view)[finest]
    torch.testing.assert_close(told["template"], north["template"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(told["weight"], north["weight"], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(untold["template"], north["template"], atol=1e-3)


@pytest.mark.parametrize("pano_input", ["resize", "pad"])
def test_panorama_reaches_the_backbone_resized_or_zero_padded(pano_input):
    net = LocalizerNet(_tiny_config(pano_input=pano_input)).eval()  # tiny_cnn: multiples of 16
    pano = torch.rand(2, 3, 40, 72)  # -> 48 x 80
    seen = []
    net.backbone.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    net.ground_taps(pano)
    normalized = (pano - net.input_mean) / net.input_std
    assert seen[0].shape == (2, 3, 48, 80)
    if pano_input == "pad":  # the reference: 4 rows above and below, 4 columns left and right, zeros
        torch.testing.assert_close(seen[0][:, :, 4:44, 4:76], normalized)
        border = torch.ones(48, 80, dtype=torch.bool)
        border[4:44, 4:76] = False
        assert float(seen[0][:, :, border].abs().max()) == 0.0
    else:
        torch.testing.assert_close(seen[0], F.interpolate(normalized, size=(48, 80), mode="bilinear",
                                                          align_corners=False))


def test_all_pairs_over_gathered_features_span_every_gathered_sample():
    net = LocalizerNet(_tiny_config()).eval()
    batch = _batch(size=2)
    with torch.no_grad():
        f_sat, f_pano = net.encode_satellite(batch[keys.SAT]), net.encode_ground(batch[keys.PANO])
        local = net.all_pairs_from_features(f_sat, f_pano, batch)
        # a stand-in for the all-gather over two ranks that hold the same batch
        doubled = net.all_pairs_from_features(f_sat, f_pano, batch, gather=lambda tensor: torch.cat([tensor, tensor]))
    for level, distances in doubled.items():
        assert distances.shape == (4, 4)
        for rows in (slice(0, 2), slice(2, 4)):
            for cols in (slice(0, 2), slice(2, 4)):
                torch.testing.assert_close(distances[rows, cols], local[level])


def test_search_region_confines_the_camera_to_the_central_part_of_the_tile():
    torch.manual_seed(1)
    whole = LocalizerNet(_tiny_config()).eval()
    central = LocalizerNet(_tiny_config(search_region=0.5)).eval()
    central.load_state_dict(whole.state_dict())
    batch = _batch(size=3)
    half_m = 0.5 * 128 * 0.57 / 2
    with torch.no_grad():
        free, confined = whole(batch), central(batch)
        distances = central.all_pairs_distance(batch)
    assert (free[keys.XY_MAX].abs() > half_m).any(), "the unconfined argmax strays beyond the region here"
    assert (confined[keys.XY_MAX].abs() <= half_m + 1e-4).all()
    assert (confined[keys.XY_EXPECTATION].abs() <= half_m + 0.5).all()
    outside = central.outside_search_region(confined[keys.PROB].shape[-2:], confined[keys.CELL_M], batch)
    assert 0 < outside[0].float().mean() < 1 and confined[keys.PROB][outside].max() < 1e-6
    inside = ~outside
    assert torch.allclose(confined[keys.SCORES][inside], free[keys.SCORES][inside])
    for level in (0, 2):
        best = 2 - 2 * confined[f"scores/{level}"].flatten(1).amax(dim=1)
        assert torch.allclose(distances[level].diagonal(), best, atol=1e-5)

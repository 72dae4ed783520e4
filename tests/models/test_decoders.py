import pytest
import torch

from geodistill.models.decoders import DPTDecoder, UNetDecoder, build_decoder, normalize_map


def _unit_norm(feature):
    return torch.allclose(feature.flatten(1).norm(dim=1), torch.ones(feature.shape[0]), atol=1e-5)


def test_unet_levels_sizes_norm_and_no_mutation():
    torch.manual_seed(0)
    taps = [torch.randn(2, c, 64 // s, 128 // s) for c, s in zip([16, 32, 48, 64], [2, 4, 8, 16])]
    copies = [t.clone() for t in taps]
    decoder = UNetDecoder([16, 32, 48, 64], [2, 4, 8, 16], width=32, level_channels=[12, 8, 4], levels=[2, 0])
    outputs = decoder(taps)
    assert [tuple(o.shape) for o in outputs] == [(2, 12, 8, 16), (2, 4, 32, 64)]  # levels 0 (stride 8), 2 (stride 2)
    assert all(_unit_norm(o) for o in outputs)
    assert len(taps) == 4 and all(torch.equal(a, b) for a, b in zip(taps, copies))


def test_unet_skips_missing_strides_and_finer_taps():
    # VGG-like taps at strides 1..16; levels down to stride 2: the stride-1 tap is not used.
    taps = [torch.randn(1, c, 32 // s, 32 // s) for c, s in zip([4, 5, 6, 7, 8], [1, 2, 4, 8, 16])]
    decoder = UNetDecoder([4, 5, 6, 7, 8], [1, 2, 4, 8, 16], width=16, level_channels=[3, 3, 3], levels=[0, 1, 2])
    assert [o.shape[-1] for o in decoder(taps)] == [4, 8, 16]
    assert "1" not in decoder.laterals


def test_dpt_levels_sizes_and_gradients():
    torch.manual_seed(1)
    taps = [torch.randn(2, 20, 3, 5) for _ in range(4)]
    copies = [t.clone() for t in taps]
    decoder = DPTDecoder([20] * 4, width=16, level_channels=[8, 6, 4], levels=[0, 2])
    outputs = decoder(taps)
    assert [tuple(o.shape) for o in outputs] == [(2, 8, 6, 10), (2, 4, 24, 40)]  # 2x and 8x the token grid
    assert all(_unit_norm(o) for o in outputs)
    assert all(torch.equal(a, b) for a, b in zip(taps, copies))
    sum(o.sum() * (i + 1) for i, o in enumerate(outputs)).backward()
    assert all(p.grad is not None for p in decoder.parameters())


def test_dpt_builds_only_what_the_levels_need():
    coarse_only = DPTDecoder([20] * 4, width=16, level_channels=[8, 6, 4], levels=[0])
    full = DPTDecoder([20] * 4, width=16, level_channels=[8, 6, 4], levels=[0, 2])
    assert sum(p.numel() for p in coarse_only.parameters()) < sum(p.numel() for p in full.parameters())
    taps = [torch.randn(1, 20, 3, 5) for _ in range(4)]
    coarse_only(taps)[0].sum().backward()
    assert all(p.grad is not None for p in coarse_only.parameters())


def test_build_decoder_auto_and_errors():
    assert isinstance(build_decoder("auto", [8] * 4, [14] * 4, True, 16, [4, 4, 4], [0, 2]), DPTDecoder)
    assert isinstance(build_decoder("auto", [8, 8], [8, 16], False, 16, [4, 4, 4], [0, 2]), UNetDecoder)
    with pytest.raises(ValueError, match="power-of-two"):
        build_decoder("unet", [8] * 4, [14] * 4, True, 16, [4, 4, 4], [0, 2])
    with pytest.raises(ValueError, match="levels"):
        build_decoder("unet", [8, 8], [8, 16], False, 16, [4, 4], [0, 2])
    with pytest.raises(ValueError, match="decoder"):
        build_decoder("fpn", [8, 8], [8, 16], False, 16, [4, 4, 4], [0, 2])


def test_normalize_map():
    feature = torch.tensor([[[[3.0, 4.0]]], [[[0.0, 0.0]]]])
    assert normalize_map(feature).flatten().tolist() == pytest.approx([0.6, 0.8, 0.0, 0.0])

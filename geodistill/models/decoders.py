"""Decoders: backbone taps -> multi-level feature maps, coarse to fine, each L2-normalised over C·H·W.

Level ``l`` is twice as fine as level ``l − 1``. The U-Net decoder (CNN taps) puts level 0 at stride 8 of the
input (levels 8, 4, 2 px); the DPT decoder (ViT taps, method.md §4.2) puts level 0 at twice the token grid
(7, 3.5, 1.75 px for patch 14). Both take the list of levels to produce and return one map per requested level
in that order; neither modifies its inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def normalize_map(feature: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """L2-normalise each sample over its whole C·H·W. (B,C,H,W) -> (B,C,H,W)."""
    norm = feature.flatten(1).norm(dim=1).clamp_min(eps)
    return feature / norm.view(-1, 1, 1, 1)


def _check_levels(levels: list[int], level_channels: list[int]) -> list[int]:
    levels = sorted(set(int(level) for level in levels))
    if not levels or levels[0] < 0 or levels[-1] >= len(level_channels):
        raise ValueError(f"levels {levels} must lie in 0..{len(level_channels) - 1} (one entry of level_channels each)")
    return levels


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True),
    )


class UNetDecoder(nn.Module):
    """U-Net style decoder for CNN taps at power-of-two strides.

    From the coarsest tap, repeatedly upsample ×2 (bilinear), add a 1×1 projection of the tap at that stride
    (if any) and apply two 3×3 conv + ReLU. The stage width halves at every stride finer than level 0 (never
    below ``min_width``). Each requested level gets a 3×3 conv head to its channel count.

    Args:
        in_channels: channels of the taps (fine to coarse, as the backbone reports them).
        in_strides: strides of the taps (distinct powers of two).
        width: stage width at level 0 and coarser.
        level_channels: output channels of levels 0, 1, ...
        levels: levels to output.
        level0_stride: input stride of level 0.
    """

    def __init__(self, in_channels: list[int], in_strides: list[int], width: int, level_channels: list[int],
                 levels: list[int], level0_stride: int = 8, min_width: int = 16) -> None:
        super().__init__()
        self.levels = _check_levels(levels, level_channels)
        if len(set(in_strides)) != len(in_strides) or any(s & (s - 1) for s in in_strides):
            raise ValueError(f"the U-Net decoder needs taps at distinct power-of-two strides, got {in_strides}")
        self.level_strides = {level: level0_stride // 2**level for level in range(len(level_channels))}
        finest = self.level_strides[self.levels[-1]]
        if finest < 1 or level0_stride % 2 ** self.levels[-1]:
            raise ValueError(f"level {self.levels[-1]} would be finer than the input (level-0 stride {level0_stride})")
        coarsest = max(in_strides)
        if coarsest < level0_stride:
            raise ValueError(f"the coarsest tap (stride {coarsest}) is finer than level 0 (stride {level0_stride})")
        self.tap_index = {stride: i for i, stride in enumerate(in_strides)}
        self.coarsest_tap = self.tap_index[coarsest]

        def stage_width(stride: int) -> int:
            return width if stride >= level0_stride else max(width * stride // level0_stride, min_width)

        self.input_projection = nn.Conv2d(in_channels[self.coarsest_tap], width, 1)
        self.stage_strides = []
        laterals, blocks = {}, {}
        stride, previous_width = coarsest, width
        while stride > finest:
            stride //= 2
            self.stage_strides.append(stride)
            if stride in self.tap_index:
                laterals[str(stride)] = nn.Conv2d(in_channels[self.tap_index[stride]], previous_width, 1)
            blocks[str(stride)] = _conv_block(previous_width, stage_width(stride))
            previous_width = stage_width(stride)
        self.laterals = nn.ModuleDict(laterals)
        self.blocks = nn.ModuleDict(blocks)
        self.heads = nn.ModuleDict({
            str(level): nn.Conv2d(stage_width(self.level_strides[level]), level_channels[level], 3, padding=1)
            for level in self.levels
        })
        self.out_channels = [level_channels[level] for level in self.levels]

    def forward(self, taps: list[torch.Tensor]) -> list[torch.Tensor]:
        """taps: list of (B,C_i,H/s_i,W/s_i) -> list over requested levels of (B,C_l,H/s_l,W/s_l), unit norm."""
        x = self.input_projection(taps[self.coarsest_tap])
        outputs = {}
        for stride in self.stage_strides:
            key = str(stride)
            if key in self.laterals:
                lateral = self.laterals[key](taps[self.tap_index[stride]])
                x = F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=False) + lateral
            else:
                x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = self.blocks[key](x)
            for level in self.levels:
                if self.level_strides[level] == stride:
                    outputs[level] = normalize_map(self.heads[str(level)](x))
        if not self.stage_strides:  # level 0 is the coarsest tap itself
            outputs[self.levels[0]] = normalize_map(self.heads[str(self.levels[0])](x))
        return [outputs[level] for level in self.levels]


class ResidualConvUnit(nn.Module):
    """RCU(x) = x + ReLU(conv3(ReLU(conv3(x)))), convolutions with bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.relu(self.conv2(F.relu(self.conv1(x))))


class DPTDecoder(nn.Module):
    """DPT-like decoder for ViT taps (method.md §4.2).

    Each tap: 1×1 conv to ``width``, nearest ×2. Top-down fusion without resampling:
    ``o_N-1 = RCU(f_N-1)``, ``o_k = RCU(RCU(f_k) + o_k+1)``. Level l comes from ``o_(N-2-l)`` upsampled ×2^l
    (bilinear) through conv3 (width -> width/2^(l+1)), ReLU, conv3 (-> level channels). With four taps and
    width 512 this is the reference decoder.

    Args:
        in_channels: channels of the taps (ordered shallow to deep).
        width: fusion width.
        level_channels: output channels of levels 0, 1, ...
        levels: levels to output.
    """

    def __init__(self, in_channels: list[int], width: int, level_channels: list[int], levels: list[int]) -> None:
        super().__init__()
        self.levels = _check_levels(levels, level_channels)
        taps = len(in_channels)
        if taps < self.levels[-1] + 2:
            raise ValueError(f"the DPT decoder needs at least {self.levels[-1] + 2} taps for level {self.levels[-1]}")
        self.source = {level: taps - 2 - level for level in self.levels}
        self.lowest_fused = min(self.source.values())
        used = range(self.lowest_fused, taps)  # shallower taps feed no requested level: build nothing for them
        self.projections = nn.ModuleDict({str(k): nn.Conv2d(in_channels[k], width, 1) for k in used})
        self.first_units = nn.ModuleDict({str(k): ResidualConvUnit(width) for k in used})
        self.fusion_units = nn.ModuleDict({str(k): ResidualConvUnit(width) for k in used if k < taps - 1})
        heads = {}
        for level in self.levels:
            mid = max(width // 2 ** (level + 1), level_channels[level])
            heads[str(level)] = nn.Sequential(
                nn.Conv2d(width, mid, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(mid, level_channels[level], 3, padding=1),
            )
        self.heads = nn.ModuleDict(heads)
        self.out_channels = [level_channels[level] for level in self.levels]

    def forward(self, taps: list[torch.Tensor]) -> list[torch.Tensor]:
        """taps: N × (B,C,h,w) -> list over requested levels of (B,C_l, 2^(l+1)·h, 2^(l+1)·w), unit norm."""
        count = len(taps)
        if count != len(self.first_units) + self.lowest_fused:
            raise ValueError(f"expected {len(self.first_units) + self.lowest_fused} taps, got {count}")

        def project(k: int) -> torch.Tensor:
            return F.interpolate(self.projections[str(k)](taps[k]), scale_factor=2.0, mode="nearest")

        fused = {count - 1: self.first_units[str(count - 1)](project(count - 1))}
        for k in range(count - 2, self.lowest_fused - 1, -1):
            fused[k] = self.fusion_units[str(k)](self.first_units[str(k)](project(k)) + fused[k + 1])
        outputs = []
        for level in self.levels:
            x = fused[self.source[level]]
            if level:
                x = F.interpolate(x, scale_factor=float(2**level), mode="bilinear", align_corners=False)
            outputs.append(normalize_map(self.heads[str(level)](x)))
        return outputs


def build_decoder(kind: str, in_channels: list[int], in_strides: list[int], is_vit: bool, width: int,
                  level_channels: list[int], levels: list[int]) -> nn.Module:
    """``kind``: ``auto`` (DPT for ViTs, U-Net for CNNs), ``unet`` or ``dpt``."""
    if kind == "auto":
        kind = "dpt" if is_vit else "unet"
    if kind == "dpt":
        return DPTDecoder(in_channels, width, level_channels, levels)
    if kind == "unet":
        return UNetDecoder(in_channels, in_strides, width, level_channels, levels)
    raise ValueError(f"unknown decoder {kind!r}; choose auto, unet or dpt")

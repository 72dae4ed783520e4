"""What every localizer base does with its images before its own heads: the backbone, input normalisation,
the satellite tile's padding to the backbone's input multiple, and frozen-backbone handling.

Subclasses (:class:`~geodistill.models.localizer.LocalizerNet`, :class:`~geodistill.models.ccvpe.CcvpeNet`)
call :meth:`BackboneInputs.build_inputs` first in their ``__init__``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from geodistill.config import ModelConfig
from geodistill.models.backbones import IMAGENET_MEAN, IMAGENET_STD, build_backbone


def round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


class BackboneInputs(nn.Module):
    """A backbone (frozen by default) and the normalised, padded inputs it reads."""

    def build_inputs(self, config: ModelConfig) -> None:
        self.backbone = build_backbone(config.backbone, config.pretrained, config.weights_path,
                                       config.allow_random_init)
        self.freeze_backbone = config.freeze_backbone
        if self.freeze_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        if config.normalization == "imagenet":
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        elif config.normalization == "symmetric":
            mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # 2x - 1
        else:
            raise ValueError(f"normalization must be 'imagenet' or 'symmetric', got {config.normalization!r}")
        self.register_buffer("input_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "BackboneInputs":
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()  # frozen BatchNorm statistics stay as loaded
        return self

    def satellite_layout(self, tile_size: int) -> tuple[int, str, float]:
        """(P, "pad" | "resize", input pixels covered by the feature map) for an S-pixel tile."""
        multiple = self.backbone.input_multiple
        padded = round_up(tile_size, multiple)
        if padded == tile_size:
            return padded, "pad", float(padded)
        if (padded - tile_size) % 2 and multiple % 2:
            padded += multiple
        if (padded - tile_size) % 2 == 0:
            return padded, "pad", float(padded)
        return padded, "resize", float(tile_size)

    def _normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.input_mean) / self.input_std

    def _features(self, images: torch.Tensor) -> list[torch.Tensor]:
        if self.freeze_backbone:
            with torch.no_grad():
                return [tap.detach() for tap in self.backbone(images)]
        return self.backbone(images)

    def satellite_taps(self, sat: torch.Tensor) -> list[torch.Tensor]:
        """Backbone taps of the padded, normalised tile (B,3,S,S) in [0,1]."""
        if sat.dim() != 4 or sat.shape[1] != 3 or sat.shape[2] != sat.shape[3]:
            raise ValueError(f"sat must be (B,3,S,S) with a square tile, got {tuple(sat.shape)}")
        size = sat.shape[-1]
        padded, mode, _ = self.satellite_layout(size)
        images = self._normalize(sat)
        if padded != size:
            if mode == "pad":
                before = (padded - size) // 2
                images = F.pad(images, (before, padded - size - before, before, padded - size - before))
            else:
                images = F.interpolate(images, size=(padded, padded), mode="bilinear", align_corners=False)
        return self._features(images)

    @staticmethod
    def _check_fov_mask(fov_mask: torch.Tensor, pano: torch.Tensor) -> None:
        if fov_mask.dim() != 2 or fov_mask.shape[0] != pano.shape[0] or fov_mask.shape[1] != pano.shape[-1]:
            raise ValueError(f"fov_mask must be (B,Wp) = {(pano.shape[0], pano.shape[-1])}, got {tuple(fov_mask.shape)}")

    def _masked_pano(self, pano: torch.Tensor, fov_mask: torch.Tensor | None) -> torch.Tensor:
        """The panorama (B,3,Hp,Wp) with its hidden columns black (before normalisation)."""
        if pano.dim() != 4 or pano.shape[1] != 3:
            raise ValueError(f"pano must be (B,3,Hp,Wp), got {tuple(pano.shape)}")
        if fov_mask is None:
            return pano
        self._check_fov_mask(fov_mask, pano)
        return pano * fov_mask.to(pano.dtype)[:, None, None, :]

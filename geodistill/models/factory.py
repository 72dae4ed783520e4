"""One entry point for building the localizer a :class:`~geodistill.config.ModelConfig` names."""

from __future__ import annotations

from torch import nn

from geodistill.config import ModelConfig
from geodistill.models.ccvpe import CcvpeNet
from geodistill.models.localizer import LocalizerNet

ARCHITECTURES = {"g2sweakly": LocalizerNet, "ccvpe": CcvpeNet}


def build_localizer(config: ModelConfig) -> nn.Module:
    """``LocalizerNet`` (``model.architecture: g2sweakly``) or ``CcvpeNet`` (``ccvpe``)."""
    if config.architecture not in ARCHITECTURES:
        raise ValueError(f"model.architecture {config.architecture!r} is not one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[config.architecture](config)


def estimates_heading(model: nn.Module) -> bool:
    """Whether the network reads its own heading over the full circle (the CCVPE base)."""
    return isinstance(model, CcvpeNet)

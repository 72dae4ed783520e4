"""GeoDistill Studio: fine-grained cross-view localization with geometry-guided self-distillation.

Importing the package is cheap: heavy modules (torch models, Gradio) load only when used.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logger = logging.getLogger("geodistill")
logger.addHandler(logging.NullHandler())

__all__ = ["__version__", "logger", "load_config", "Localizer"]


def __getattr__(name: str):
    if name == "load_config":
        from geodistill.config import load_config

        return load_config
    if name == "Localizer":
        from geodistill.inference import Localizer

        return Localizer
    raise AttributeError(f"module 'geodistill' has no attribute {name!r}")

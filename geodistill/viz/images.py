"""Small image helpers shared by the drawings: conversion to uint8 RGB, resizing, colormaps, figures.

Every drawing in :mod:`geodistill.viz` returns an (H, W, 3) ``uint8`` numpy array, which Gradio and PIL
both take as is.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def to_rgb_uint8(image) -> np.ndarray:
    """Any image we handle as an (H, W, 3) uint8 array.

    Args:
        image: a torch tensor or numpy array, (3, H, W) or (H, W, 3) or (H, W); floats are taken to be
            in [0, 1], integers in [0, 255].

    Returns:
        (H, W, 3) uint8 array (a copy).
    """
    if hasattr(image, "detach"):
        image = image.detach().cpu().float().numpy()
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    elif array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an image of shape (3,H,W), (H,W,3) or (H,W), got {array.shape}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    array = array[..., :3]
    if np.issubdtype(array.dtype, np.floating):
        array = np.clip(np.nan_to_num(array), 0.0, 1.0) * 255.0 + 0.5
    return np.clip(array, 0, 255).astype(np.uint8)


def resize_rgb(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of an (H, W, C) uint8 image to (height, width, C)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return np.asarray(Image.fromarray(image).resize((int(width), int(height)), Image.BILINEAR))


def resize_map(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a float (H, W) map (e.g. a probability map) to (height, width)."""
    values = np.asarray(values, dtype=np.float32)
    if values.shape == (height, width):
        return values
    return np.asarray(Image.fromarray(values).resize((int(width), int(height)), Image.BILINEAR))


def colormap_rgb(values: np.ndarray, cmap: str = "magma", vmin: float | None = None,
                 vmax: float | None = None) -> np.ndarray:
    """Map a float (H, W) array to (H, W, 3) uint8 colours with a matplotlib colormap."""
    from matplotlib import colormaps

    values = np.nan_to_num(np.asarray(values, dtype=np.float32))
    low = float(values.min()) if vmin is None else vmin
    high = float(values.max()) if vmax is None else vmax
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    rgba = colormaps[cmap](np.clip(scaled, 0.0, 1.0))
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8)


def blend(base: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-composite ``layer`` over ``base`` (both (H, W, 3) uint8) with a per-pixel alpha (H, W) in [0, 1]."""
    alpha = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)[..., None]
    mixed = base.astype(np.float32) * (1 - alpha) + layer.astype(np.float32) * alpha
    return (mixed + 0.5).astype(np.uint8)


def figure_to_rgb(figure) -> np.ndarray:
    """Render a matplotlib figure to an (H, W, 3) uint8 array."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def png_data_url(image: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URL of an (H, W, 3) or (H, W, 4) uint8 image."""
    import base64

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

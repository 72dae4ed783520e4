"""Reading and resizing images: one place that turns any image file or array into a (3,H,W) float tensor.

Every reader raises :class:`~geodistill.errors.DataError` naming the file when an image is missing, empty,
corrupt, truncated or too large. Grayscale, palette, RGBA (alpha dropped), CMYK and 16-bit images become RGB in
[0, 1]; EXIF orientation is applied, so a photo shows upright as a viewer would show it.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from geodistill.errors import DataError

logger = logging.getLogger("geodistill.data.images")

MAX_PIXELS = 150_000_000
"""Largest image accepted by default (a 16384x8192 panorama has 134 M pixels)."""

_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def check_pixel_count(width: int, height: int, max_pixels: int, name: str) -> None:
    """Refuse images over ``max_pixels`` before they are decoded."""
    if width * height > max_pixels:
        raise DataError(
            f"{name}: image is {width}x{height} ({width * height / 1e6:.0f} M pixels), over the limit of "
            f"{max_pixels / 1e6:.0f} M pixels; downscale it first (the model uses a few hundred pixels per side)"
        )


def _reduced(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    """``image`` shrunk by the largest integer factor that keeps it at least ``target`` (box filter, 8-bit modes
    only: cheap next to converting a huge image to float)."""
    factor = min(image.size[0] // max(1, target[0]), image.size[1] // max(1, target[1]))
    if factor < 2 or image.mode not in ("RGB", "RGBA", "L", "LA"):
        return image
    return image.reduce(factor)


def open_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Open, size-check, decode and EXIF-rotate an image file.

    Args:
        path: image file.
        max_pixels: refuse images with more pixels than this (checked before decoding).
        draft_size: optional (width, height) the caller will resize to; JPEGs are then decoded at the smallest
            DCT scale that is still at least this large, which is much faster for big panoramas.

    Returns:
        A loaded PIL image in its original mode, upright; ``image.info["original_size"]`` is the upright
        (width, height) of the file before any draft reduction.

    Raises:
        DataError: the file is missing, empty, not an image, damaged, truncated or too large.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (0 bytes); re-download or regenerate it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as error:
        raise DataError(f"{path}: image is too large to open safely ({error}); downscale it first") from error
    except UnidentifiedImageError as error:
        raise DataError(f"{path}: not a readable image (unknown or damaged format); expected a JPEG or PNG") from error
    except OSError as error:
        raise DataError(f"{path}: cannot open image: {error}") from error
    try:
        width, height = image.size
        check_pixel_count(width, height, max_pixels, str(path))
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        original_size = (width, height) if orientation in (1, 2, 3, 4) else (height, width)
        if draft_size is not None and image.format == "JPEG":
            target = draft_size if orientation in (1, 2, 3, 4) else (draft_size[1], draft_size[0])
            image.draft(image.mode, target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
        if orientation != 1:
            image = ImageOps.exif_transpose(image)
        image.info["original_size"] = original_size
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError) as error:
        detail = "file is truncated (incomplete download?)" if "truncated" in str(error) else f"damaged image: {error}"
        raise DataError(f"{path}: {detail}; re-download or regenerate it") from error
    return image


def pil_to_array(image: Image.Image) -> np.ndarray:
    """A PIL image of any common mode as float32 RGB in [0, 1], shape (H, W, 3)."""
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.float32) / 65535.0
        return np.repeat(np.clip(values, 0.0, 1.0)[..., None], 3, axis=2)
    if image.mode == "F":
        return _float_to_rgb(np.asarray(image, dtype=np.float32))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.float32) / 255.0


def _float_to_rgb(values: np.ndarray) -> np.ndarray:
    if not np.isfinite(values).all():
        raise DataError("image holds NaN or infinite values")
    peak = float(values.max()) if values.size else 0.0
    scale = 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0
    values = np.clip(values / scale, 0.0, 1.0)
    return np.repeat(values[..., None], 3, axis=2) if values.ndim == 2 else values


def array_to_rgb(array: np.ndarray) -> np.ndarray:
    """A numpy image (H,W), (H,W,1), (H,W,3) or (H,W,4) of uint8, uint16 or float as float32 RGB (H,W,3) in [0, 1]."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[..., :3] if array.shape[2] == 4 else array
        array = np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array
    elif array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    else:
        raise DataError(f"image array has shape {array.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if np.issubdtype(array.dtype, np.floating):
        return _float_to_rgb(array.astype(np.float32))
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        return _float_to_rgb(array.astype(np.float32))
    raise DataError(f"image array has unsupported dtype {array.dtype}")


def to_chw_tensor(image) -> torch.Tensor:
    """Any image (path, PIL image, numpy HWC/HW array, or a (3,H,W) tensor) as float32 (3,H,W) in [0, 1]."""
    if isinstance(image, (str, os.PathLike)):
        return read_rgb(image)
    if isinstance(image, Image.Image):
        array = pil_to_array(image)
    elif isinstance(image, torch.Tensor):
        if image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[-1] not in (1, 3, 4):
            tensor = image[:3] if image.shape[0] != 1 else image.expand(3, -1, -1)
            tensor = tensor.float() / 255.0 if image.dtype == torch.uint8 else tensor.float()
            return tensor.clamp(0.0, 1.0).contiguous()
        array = array_to_rgb(image.detach().cpu().numpy())
    else:
        array = array_to_rgb(image)
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()


def read_rgb(path: str | os.PathLike, max_pixels: int = MAX_PIXELS, draft_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Read an image file as float32 RGB (3,H,W) in [0, 1]; see :func:`open_image` for the arguments. With
    ``draft_size`` an 8-bit image is also reduced by the largest integer factor that keeps it at least that large
    (before the conversion to float, the slow part for a huge panorama)."""
    image = open_image(path, max_pixels, draft_size)
    if draft_size is not None:
        image = _reduced(image, draft_size)
    return torch.from_numpy(np.ascontiguousarray(pil_to_array(image))).permute(2, 0, 1)


def read_rgb_resized(
    path: str | os.PathLike, size_hw: tuple[int, int], max_pixels: int = MAX_PIXELS
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Read an image file resized bilinearly (anti-aliased) to ``size_hw``; fast for big JPEGs.

    Returns:
        (image (3,H,W) float32 in [0, 1] at ``size_hw``, the file's upright (width, height)).
    """
    height, width = size_hw
    image = open_image(path, max_pixels, draft_size=(width, height))
    original_size = image.info.get("original_size", image.size)
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        return resize_image(torch.from_numpy(pil_to_array(image)).permute(2, 0, 1), size_hw), original_size
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (width, height):
        # Pillow's bilinear filter widens its support when shrinking, i.e. it is anti-aliased
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1), original_size


def resize_image(image: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (anti-aliased when shrinking) of a (3,H,W) or (B,3,H,W) float image, clamped to [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(size_hw):
        return image
    batched = image if image.ndim == 4 else image[None]
    shrinking = size_hw[0] < batched.shape[-2] or size_hw[1] < batched.shape[-1]
    resized = F.interpolate(batched, size=tuple(size_hw), mode="bilinear", align_corners=False, antialias=shrinking)
    resized = resized.clamp(0.0, 1.0)
    return resized if image.ndim == 4 else resized[0]


def resize_column_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Resample a bool column mask (W,) to ``width`` columns by the nearest column centre."""
    if mask.shape[-1] == width:
        return mask
    centres = (torch.arange(width, dtype=torch.float64) + 0.5) * mask.shape[-1] / width
    return mask[..., centres.floor().long().clamp(max=mask.shape[-1] - 1)]

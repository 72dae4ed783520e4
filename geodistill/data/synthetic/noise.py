"""Deterministic procedural noise: a tileable fractal texture and an integer hash.

The texture is built once per process from a fixed seed, so renders do not depend on process history.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

TEXTURE_SIZE = 256


@functools.lru_cache(maxsize=1)
def fractal_texture() -> np.ndarray:
    """Tileable fractal value noise, (256, 256) float32 with mean 0.5 and values in [0, 1]."""
    rng = np.random.default_rng(20240611)
    size = TEXTURE_SIZE
    total = np.zeros((size, size), np.float32)
    amplitude, weight = 1.0, 0.0
    for cells in (4, 8, 16, 32, 64, 128):
        grid = rng.random((cells, cells)).astype(np.float32)
        tiled = np.tile(grid, (3, 3))
        up = cv2.resize(tiled, (3 * size, 3 * size), interpolation=cv2.INTER_CUBIC)[size:2 * size, size:2 * size]
        total += amplitude * up
        weight += amplitude
        amplitude *= 0.6
    total /= weight
    total = (total - total.min()) / (total.max() - total.min())
    return total.astype(np.float32)


def sample(u: np.ndarray, v: np.ndarray, scale_m: float, offset: float = 0.0) -> np.ndarray:
    """Bilinear lookup of the fractal texture at (u, v) / scale_m, wrapping; same shape as u, float32."""
    tex = fractal_texture()
    size = TEXTURE_SIZE
    x = np.asarray(u, np.float32) * np.float32(size / scale_m / 8.0) + np.float32(offset * 37.0)
    y = np.asarray(v, np.float32) * np.float32(size / scale_m / 8.0) + np.float32(offset * 53.0)
    x0f, y0f = np.floor(x), np.floor(y)
    fx, fy = x - x0f, y - y0f
    x0 = x0f.astype(np.int64) & (size - 1)
    y0 = y0f.astype(np.int64) & (size - 1)
    x1, y1 = (x0 + 1) & (size - 1), (y0 + 1) & (size - 1)
    top = tex[y0, x0] * (1 - fx) + tex[y0, x1] * fx
    bottom = tex[y1, x0] * (1 - fx) + tex[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def hash01(*keys: np.ndarray) -> np.ndarray:
    """Integer hash of integer arrays to floats in [0, 1); broadcasts its inputs."""
    h = np.uint64(0x9E3779B97F4A7C15)
    acc = np.zeros(np.broadcast(*keys).shape, np.uint64)
    with np.errstate(over="ignore"):
        for key in keys:
            acc = (acc ^ np.asarray(key).astype(np.int64).astype(np.uint64)) * h
            acc ^= acc >> np.uint64(29)
        acc *= np.uint64(0xBF58476D1CE4E5B9)
        acc ^= acc >> np.uint64(32)
    return (acc >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)

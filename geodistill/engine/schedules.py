"""Schedules as arrays indexed by step (or epoch): the loop reads ``schedule[step]``.

An array is trivially resumable (the position is the step counter), can be plotted before a run starts,
and serves every scheduled quantity alike: learning rate, EMA momentum, temperatures, FoV range.
"""

from __future__ import annotations

import math

import numpy as np

from geodistill.config import OptimConfig


def cosine_schedule(start: float, end: float, total: int, warmup: int = 0, warmup_start: float = 0.0) -> np.ndarray:
    """Linear warm-up from ``warmup_start`` to ``start`` over ``warmup`` steps, then a half cosine to ``end``.

    Args:
        start: value right after the warm-up.
        end: value at the last step.
        total: number of steps (array length).
        warmup: warm-up steps (clipped to ``total``).
        warmup_start: value at step 0 when ``warmup > 0``.

    Returns:
        float64 array of shape (total,).

    >>> cosine_schedule(1.0, 0.0, 3).tolist()
    [1.0, 0.5, 0.0]
    """
    if total < 0 or warmup < 0:
        raise ValueError(f"total ({total}) and warmup ({warmup}) must be >= 0")
    warmup = min(warmup, total)
    values = np.empty(total, dtype=np.float64)
    if warmup:
        values[:warmup] = warmup_start + (start - warmup_start) * np.arange(warmup) / warmup
    decay = total - warmup
    if decay == 1:
        values[warmup:] = start
    elif decay > 1:
        progress = np.arange(decay) / (decay - 1)
        values[warmup:] = end + 0.5 * (start - end) * (1.0 + np.cos(math.pi * progress))
    return values


def constant_schedule(value: float, total: int, warmup: int = 0, warmup_start: float = 0.0) -> np.ndarray:
    """``value`` at every step after an optional linear warm-up from ``warmup_start``.

    >>> constant_schedule(2.0, 4, warmup=2).tolist()
    [0.0, 1.0, 2.0, 2.0]
    """
    return cosine_schedule(value, value, total, warmup, warmup_start)


def lr_schedule(optim: OptimConfig, total_steps: int) -> np.ndarray:
    """Learning rate per optimizer step from the :class:`OptimConfig` (cosine from ``lr`` to ``min_lr``,
    or constant ``lr``; both after ``warmup_steps`` of linear warm-up from 0)."""
    if optim.schedule == "cosine":
        return cosine_schedule(optim.lr, optim.min_lr, total_steps, optim.warmup_steps)
    if optim.schedule == "constant":
        return constant_schedule(optim.lr, total_steps, optim.warmup_steps)
    raise ValueError(f"unknown schedule {optim.schedule!r}")

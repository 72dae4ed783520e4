"""The EMA teacher: a frozen copy of the student that follows it by exponential moving average.

The teacher never receives gradients and never leaves eval mode; it changes only through
:meth:`EmaTeacher.update`, which applies ``teacher <- m * teacher + (1 - m) * student`` to every
parameter and every floating-point buffer (integer buffers such as BatchNorm's
``num_batches_tracked`` are copied). The momentum ``m`` comes from a schedule array indexed by the
update count (:func:`ema_momentum_schedule`).
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import torch
from torch import nn

logger = logging.getLogger("geodistill.distill.ema")


def ema_momentum_schedule(start: float, final: float, num_updates: int, mode: str = "cosine") -> np.ndarray:
    """Momentum for each of ``num_updates`` EMA updates.

    Args:
        start: momentum of the first update.
        final: momentum of the last update (``mode="cosine"``).
        num_updates: number of updates (steps for per-step EMA, epochs for per-epoch EMA).
        mode: ``"cosine"`` rises from ``start`` to ``final`` along half a cosine (DINO style);
            ``"constant"`` keeps ``start`` throughout.

    Returns:
        float64 array (num_updates,).
    """
    if num_updates < 1:
        raise ValueError(f"an EMA schedule needs at least one update, got {num_updates}")
    for name, value in (("start", start), ("final", final)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"EMA momentum {name}={value} is outside [0, 1]")
    if mode == "constant":
        return np.full(num_updates, start, dtype=np.float64)
    if mode != "cosine":
        raise ValueError(f"unknown EMA schedule mode {mode!r} (cosine | constant)")
    if num_updates == 1:
        return np.array([start], dtype=np.float64)
    progress = np.arange(num_updates, dtype=np.float64) / (num_updates - 1)
    return final - (final - start) * (np.cos(math.pi * progress) + 1.0) / 2.0


class EmaTeacher(nn.Module):
    """A frozen network that tracks a student by exponential moving average.

    The wrapped ``module`` is a deep copy of the student made at construction (or a given network
    with the same state-dict layout). Its parameters have ``requires_grad = False``, it stays in
    eval mode whatever ``train()`` is called with, and :meth:`forward` runs under ``no_grad``.

    Tensors shared by the teacher and the student (for example a frozen backbone both reference)
    are the same object; averaging a tensor with itself leaves it unchanged, so they are skipped.

    Args:
        student: the network to follow.
        teacher: optional initial teacher (same architecture); default: a deep copy of ``student``.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None):
        super().__init__()
        self.module = copy.deepcopy(student) if teacher is None else teacher
        self._check_layout(student)
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
        self.module.eval()
        self.num_updates = 0

    def train(self, mode: bool = True) -> "EmaTeacher":
        """Keep the teacher in eval mode (BatchNorm statistics and dropout frozen)."""
        super().train(False)
        return self

    @torch.no_grad()
    def forward(self, *args, **kwargs):
        """Run the teacher network without building a graph."""
        return self.module(*args, **kwargs)

    def _check_layout(self, student: nn.Module) -> None:
        teacher_keys = list(self.module.state_dict().keys())
        student_keys = list(student.state_dict().keys())
        if teacher_keys != student_keys:
            missing = sorted(set(student_keys) - set(teacher_keys))[:5]
            extra = sorted(set(teacher_keys) - set(student_keys))[:5]
            raise ValueError(f"teacher and student differ in layout (missing {missing}, extra {extra})")

    @torch.no_grad()
    def update(self, student: nn.Module, momentum: float) -> None:
        """``teacher <- momentum * teacher + (1 - momentum) * student`` for parameters and float buffers.

        Args:
            student: the network being trained (same layout as the teacher).
            momentum: weight of the current teacher, in [0, 1].
        """
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"EMA momentum {momentum} is outside [0, 1]")
        student_state = dict(student.named_parameters())
        student_state.update(student.named_buffers())
        teacher_state = dict(self.module.named_parameters())
        teacher_state.update(self.module.named_buffers())
        if teacher_state.keys() != student_state.keys():
            self._check_layout(student)
            raise ValueError("teacher and student differ in their parameters or buffers")
        for name, target in teacher_state.items():
            source = student_state[name]
            if target is source:
                continue
            if target.is_floating_point():
                target.mul_(momentum).add_(source.detach().to(target.dtype), alpha=1.0 - momentum)
            else:
                target.copy_(source)
        self.num_updates += 1
        logger.debug("EMA update %d with momentum %.6f", self.num_updates, momentum)

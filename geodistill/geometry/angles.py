"""Angle wrapping in degrees, for floats, numpy arrays and torch tensors alike."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

AngleLike = TypeVar("AngleLike", float, np.ndarray, torch.Tensor)


def wrap_deg(angle_deg: AngleLike) -> AngleLike:
    """Wrap angles to [0, 360).

    Args:
        angle_deg: angles in degrees, any shape (float, numpy array or tensor).

    Returns:
        The same angles in [0, 360), same type and shape.

    Convention:
        Degrees; headings are clockwise from north, so 0 is north and 90 is east.

    Example:
        >>> wrap_deg(-90.0)
        270.0
        >>> wrap_deg(360.0)
        0.0
    """
    wrapped = angle_deg % 360.0
    # x % 360 can round up to exactly 360.0 for tiny negative x in floating point.
    if isinstance(wrapped, torch.Tensor):
        return torch.where(wrapped >= 360.0, wrapped - 360.0, wrapped)
    if isinstance(wrapped, np.ndarray):
        return np.where(wrapped >= 360.0, wrapped - 360.0, wrapped)
    return float(wrapped - 360.0) if wrapped >= 360.0 else float(wrapped)


def wrap_deg_signed(angle_deg: AngleLike) -> AngleLike:
    """Wrap angles to [-180, 180).

    Args:
        angle_deg: angles in degrees, any shape (float, numpy array or tensor).

    Returns:
        The same angles in [-180, 180), same type and shape.

    Convention:
        Degrees; positive is clockwise seen from above (towards east from north).

    Example:
        >>> wrap_deg_signed(270.0)
        -90.0
        >>> wrap_deg_signed(180.0)
        -180.0
    """
    return wrap_deg(angle_deg + 180.0) - 180.0


def angle_error_deg(angle_a_deg: AngleLike, angle_b_deg: AngleLike) -> AngleLike:
    """Absolute angular difference in [0, 180].

    Args:
        angle_a_deg: angles in degrees, any shape.
        angle_b_deg: angles in degrees, broadcastable to ``angle_a_deg``.

    Returns:
        The smallest absolute rotation between them, in degrees, in [0, 180].

    Convention:
        Degrees; the result does not depend on the direction of rotation.

    Example:
        >>> angle_error_deg(350.0, 10.0)
        20.0
    """
    difference = wrap_deg_signed(angle_a_deg - angle_b_deg)
    if isinstance(difference, torch.Tensor):
        return difference.abs()
    if isinstance(difference, np.ndarray):
        return np.abs(difference)
    return abs(difference)

"""Shape checks at the boundary of public geometry functions, with named axes."""

from __future__ import annotations

import torch


def check_shape(tensor: torch.Tensor, spec: str, name: str = "tensor") -> dict[str, int]:
    """Check a tensor's shape against a named-axis pattern and return the named sizes.

    Args:
        tensor: any tensor (or array with a ``.shape``).
        spec: space-separated axes: an integer fixes a size, a name binds one axis (the same name must
            have the same size everywhere it appears), ``*`` matches one axis of any size and ``...``
            (at most once) matches any number of axes, e.g. ``"B 3 H W"`` or ``"... 2"``.
        name: how the tensor is called in the error message.

    Returns:
        A dict from axis name to its size (``...`` and ``*`` are not reported).

    Raises:
        ValueError: naming the tensor, the expected pattern and the actual shape.

    Convention:
        Shapes are written as in the house style, BCHW for images and feature maps.

    Example:
        >>> check_shape(torch.zeros(2, 3, 4, 8), "B 3 H W")
        {'B': 2, 'H': 4, 'W': 8}
    """
    tokens = spec.split()
    shape = tuple(tensor.shape)
    if tokens.count("...") > 1:
        raise ValueError(f"shape pattern {spec!r} uses '...' more than once")
    if "..." in tokens:
        cut = tokens.index("...")
        head, tail = tokens[:cut], tokens[cut + 1:]
        if len(shape) < len(head) + len(tail):
            _fail(name, spec, shape)
        pairs = list(zip(head, shape[: len(head)])) + list(zip(tail, shape[len(shape) - len(tail):]))
    else:
        if len(shape) != len(tokens):
            _fail(name, spec, shape)
        pairs = list(zip(tokens, shape))
    sizes: dict[str, int] = {}
    for token, size in pairs:
        if token == "*":
            continue
        if token.lstrip("-").isdigit():
            if int(token) != size:
                _fail(name, spec, shape)
        elif token in sizes and sizes[token] != size:
            _fail(name, spec, shape, f" (axis {token} is {sizes[token]} and {size})")
        else:
            sizes[token] = int(size)
    return sizes


def _fail(name: str, spec: str, shape: tuple, extra: str = "") -> None:
    raise ValueError(f"{name} must have shape ({spec}), got {tuple(shape)}{extra}")

"""Correlation benchmark: FFT vs direct grouped ``conv2d`` at the paper's level-2 sizes (method.md §3.2, §4.4)."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from geodistill.models.correlation import masked_ncc

PAPER_CHANNELS = 16
PAPER_SAT_SIDE = 296
PAPER_TEMPLATE_SIDE = 118


def _median_ms(function: Callable[[], torch.Tensor], repeats: int, device: torch.device) -> tuple[float, torch.Tensor]:
    result = function()  # warm-up (plans, allocator, kernels)
    timings = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = function()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings), result


def bench_correlation(repeats: int = 5, device: str | torch.device = "cpu", seed: int = 0,
                      channels: int = PAPER_CHANNELS, sat_side: int = PAPER_SAT_SIDE,
                      template_side: int = PAPER_TEMPLATE_SIDE) -> list[dict]:
    """Time the masked NCC both ways at batch 1: by default 16 channels, 296² satellite features, 118² template.

    Returns:
        Two rows (dicts): ``name``, ``median_ms``, ``runs``, ``device``; the FFT row also has
        ``speedup_vs_direct`` and ``max_abs_diff`` (largest cosine difference between the two paths).
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    f_sat = torch.randn(1, channels, sat_side, sat_side, generator=generator).to(device)
    template = torch.randn(1, channels, template_side, template_side, generator=generator).to(device)
    weight = (torch.rand(1, template_side, template_side, generator=generator) > 0.3).float().to(device)
    sizes = f"B=1, C={channels}, {sat_side}² satellite, {template_side}² template"
    with torch.no_grad():
        fft_ms, fft_result = _median_ms(lambda: masked_ncc(f_sat, template, weight, method="fft"), repeats, device)
        direct_ms, direct_result = _median_ms(lambda: masked_ncc(f_sat, template, weight, method="direct"),
                                              repeats, device)
    max_diff = float((fft_result - direct_result).abs().max())
    return [
        {"name": f"correlation FFT ({sizes})", "median_ms": fft_ms, "runs": repeats, "device": str(device),
         "speedup_vs_direct": direct_ms / fft_ms, "max_abs_diff": max_diff},
        {"name": f"correlation direct conv2d ({sizes})", "median_ms": direct_ms, "runs": repeats,
         "device": str(device)},
    ]

"""Orientation-aware descriptor matching for the CCVPE base (docs/method.md, "CCVPE").

The ground descriptor is a (C, N) array: N azimuth bins of the panorama, bin j covering the columns
``[j·W/N, (j+1)·W/N)``. An aerial descriptor at a cell has the same (C, N) layout and stands for the view of a
north-facing camera there. Turning the camera clockwise by h rolls the ground descriptor left by ``h·N/360`` bins
(the convention of :func:`geodistill.geometry.panorama.roll_panorama`), so rolling it back right by
``k = h·N/360`` bins (``torch.roll(G, k, -1)``) re-aligns it with north. With ``r`` shifts per bin the matching
tries K = r·N rolls; roll k (``k/r`` bins, fractional rolls interpolated linearly) stands for the heading

    θ_k = k · 360 / K   degrees clockwise from north.

For every roll and aerial cell, the similarity is the cosine of the rolled masked ground descriptor and the
aerial descriptor restricted to the visible bins (the mask rolls with the descriptor), so hidden azimuths add
nothing to the numerator nor to either norm. The result is a (B, K, h, w) volume; its maximum over the rolls
is the location score, and a softmax over the rolls gives a heading distribution per cell whose mean unit
vector (cos θ, sin θ) rotates exactly with the panorama.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

EPS = 1e-6


def shift_headings_deg(num_shifts: int, device: torch.device | None = None) -> torch.Tensor:
    """θ_k = k·360/K, (K,) float32 degrees: the heading that roll k re-aligns with north."""
    return torch.arange(num_shifts, dtype=torch.float32, device=device) * (360.0 / num_shifts)


def fractional_rolls(values: torch.Tensor, shifts_per_bin: int) -> torch.Tensor:
    """Every roll of ``values`` (..., N) along its last axis by k/r bins, k = 0..r·N-1: (..., K, N).

    ``out[..., k, j] = values[..., j - k/r]`` with linear interpolation between whole rolls.
    """
    if shifts_per_bin < 1:
        raise ValueError(f"shifts_per_bin must be at least 1, got {shifts_per_bin}")
    bins = values.shape[-1]
    index = torch.arange(bins, device=values.device)
    rolls = []
    for k in range(bins * shifts_per_bin):
        whole, fraction = divmod(k, shifts_per_bin)
        left = values[..., (index - whole) % bins]
        if fraction:
            weight = fraction / shifts_per_bin
            left = (1.0 - weight) * left + weight * values[..., (index - whole - 1) % bins]
        rolls.append(left)
    return torch.stack(rolls, dim=-2)


def bin_visibility(column_mask: torch.Tensor | None, batch: int, bins: int, device: torch.device) -> torch.Tensor:
    """(B, N) float in {0, 1}: an azimuth bin counts as visible when at least half of its columns are.

    ``column_mask`` (B, W) bool (True = visible) or None (everything visible).
    """
    if column_mask is None:
        return torch.ones(batch, bins, device=device)
    share = F.adaptive_avg_pool1d(column_mask.to(device=device, dtype=torch.float32)[:, None], bins)[:, 0]
    return (share >= 0.5).to(torch.float32)


def match_volume(ground: torch.Tensor, aerial: torch.Tensor, visible: torch.Tensor, shifts_per_bin: int) -> torch.Tensor:
    """Masked cosine similarity of every roll of the ground descriptor with the aerial descriptor of every cell.

    Args:
        ground: (B, C, N) ground descriptor.
        aerial: (B, C, N, h, w) aerial descriptors.
        visible: (B, N) bin weights in [0, 1] (1 = visible).
        shifts_per_bin: r, rolls per bin.

    Returns:
        (B, K, h, w) cosines in [-1, 1], K = r·N; 0 where nothing is visible.
    """
    if ground.dim() != 3 or aerial.dim() != 5 or aerial.shape[:3] != ground.shape:
        raise ValueError(f"ground (B,C,N) {tuple(ground.shape)} does not fit aerial (B,C,N,h,w) {tuple(aerial.shape)}")
    dtype = torch.float64 if ground.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=ground.device.type, enabled=False):
        ground, aerial, visible = ground.to(dtype), aerial.to(dtype), visible.to(dtype)
        rolled = fractional_rolls(ground * visible[:, None], shifts_per_bin)       # B,C,K,N
        rolled_mask = fractional_rolls(visible, shifts_per_bin)                     # B,K,N
        numerator = torch.einsum("bckn,bcnyx->bkyx", rolled, aerial)
        energy = aerial.square().sum(dim=1)                                         # B,N,h,w
        aerial_norm = torch.einsum("bkn,bnyx->bkyx", rolled_mask, energy).clamp_min(EPS * EPS).sqrt()
        ground_norm = rolled.square().sum(dim=(1, 3)).clamp_min(EPS * EPS).sqrt()   # B,K
        return numerator / (aerial_norm * ground_norm[:, :, None, None])


def prior_shift_mask(num_shifts: int, prior_deg: torch.Tensor | None, range_deg: torch.Tensor | None,
                     device: torch.device) -> torch.Tensor | None:
    """(B, K) bool: the rolls whose heading lies within ``range`` of the prior (None: no prior).

    A range below half a roll step still keeps the roll nearest to the prior, so a known heading (range 0)
    selects exactly one roll (two at an exact tie).
    """
    if prior_deg is None:
        return None
    prior = torch.as_tensor(prior_deg, dtype=torch.float32, device=device).reshape(-1, 1)
    spread = torch.as_tensor(180.0 if range_deg is None else range_deg, dtype=torch.float32, device=device)
    spread = spread.reshape(-1, 1).expand_as(prior)
    step = 360.0 / num_shifts
    distance = angle_distance_deg(shift_headings_deg(num_shifts, device)[None], prior)   # B,K
    return distance <= torch.maximum(spread, torch.full_like(spread, step / 2.0)) + 1e-4


def angle_distance_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a − b| around the circle, in [0, 180] degrees (broadcasting)."""
    return (torch.remainder(a - b + 180.0, 360.0) - 180.0).abs()


def masked_shift_max(volume: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """Location score (B, h, w): the best roll per cell, among the allowed rolls when a prior is given."""
    if allowed is not None:
        volume = volume.masked_fill(~allowed[:, :, None, None], -2.0)
    return volume.amax(dim=1)


def heading_vectors(volume: torch.Tensor, temperature: float, allowed: torch.Tensor | None) -> torch.Tensor:
    """Mean unit heading vector (B, 2, h, w) = Σ_k softmax_k(volume / T) · (cos θ_k, sin θ_k).

    Its length (the mean resultant length, in [0, 1]) is the concentration of the heading distribution.
    """
    logits = volume / temperature
    if allowed is not None:
        logits = logits.masked_fill(~allowed[:, :, None, None], -math.inf)
    weights = logits.softmax(dim=1)                                                  # B,K,h,w
    angles = torch.deg2rad(shift_headings_deg(volume.shape[1], volume.device).to(weights.dtype))
    cos = torch.einsum("bkyx,k->byx", weights, torch.cos(angles))
    sin = torch.einsum("bkyx,k->byx", weights, torch.sin(angles))
    return torch.stack([cos, sin], dim=1)


def rotate_vectors(vectors: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Complex product of two (B, 2, ...) fields (cos, sin)-first: angles add, lengths multiply."""
    a, b = vectors[:, 0], vectors[:, 1]
    c, d = rotation[:, 0], rotation[:, 1]
    return torch.stack([a * c - b * d, a * d + b * c], dim=1)


def vector_to_heading_deg(vectors: torch.Tensor) -> torch.Tensor:
    """(B, 2, ...) (cos, sin) -> (B, ...) headings in [0, 360) degrees clockwise from north."""
    return torch.remainder(torch.rad2deg(torch.atan2(vectors[:, 1], vectors[:, 0])), 360.0)


def heading_to_vector(heading_deg: torch.Tensor) -> torch.Tensor:
    """(B,) degrees -> (B, 2) unit vectors (cos, sin)."""
    radians = torch.deg2rad(torch.as_tensor(heading_deg, dtype=torch.float32))
    return torch.stack([torch.cos(radians), torch.sin(radians)], dim=-1)


def clamp_to_prior(heading_deg: torch.Tensor, prior_deg: torch.Tensor | None,
                   range_deg: torch.Tensor | None) -> torch.Tensor:
    """Headings (B,) brought into [prior − range, prior + range] (unchanged without a prior), in [0, 360)."""
    if prior_deg is None or range_deg is None:
        return torch.remainder(heading_deg, 360.0)
    prior = torch.as_tensor(prior_deg, dtype=heading_deg.dtype, device=heading_deg.device).reshape(-1)
    spread = torch.as_tensor(range_deg, dtype=heading_deg.dtype, device=heading_deg.device).reshape(-1)
    offset = torch.remainder(heading_deg - prior + 180.0, 360.0) - 180.0
    offset = torch.maximum(torch.minimum(offset, spread), -spread)
    return torch.remainder(prior + offset, 360.0)


def value_at(values: torch.Tensor, rowcol: torch.Tensor) -> torch.Tensor:
    """Entries of a (B, ..., H, W) map at one cell per sample ((B, 2) rows/cols, rounded and clamped): (B, ...)."""
    height, width = values.shape[-2:]
    row = rowcol[:, 0].round().long().clamp(0, height - 1)
    col = rowcol[:, 1].round().long().clamp(0, width - 1)
    return values[torch.arange(values.shape[0], device=values.device), ..., row, col]


def read_heading(field: torch.Tensor, rowcol: torch.Tensor, prior_deg: torch.Tensor | None = None,
                 range_deg: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Heading at a cell of a (B, 2, H, W) vector field: (heading (B,) in [0, 360), vector length (B,)).

    ``rowcol`` (B, 2) cells (rounded to the nearest cell); the heading is clamped to the prior window when given.
    """
    vector = value_at(field, rowcol)                                                  # B,2
    heading = vector_to_heading_deg(vector[:, :, None])[:, 0]
    return clamp_to_prior(heading, prior_deg, range_deg), vector.norm(dim=1)

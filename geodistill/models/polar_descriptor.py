"""The CCVPE base's polar aerial descriptor (``model.ccvpe.aerial_descriptor: polar``; docs/method.md §13.2).

The aerial descriptor of a cell has the ground descriptor's (C, N) layout: bin j stands for what a north-facing
camera at that cell sees at the azimuth of the ground descriptor's bin j, ``φ_j = 360·(j + ½)/N − 180`` degrees
clockwise from north (the panorama's column convention). The paper's decoder learns that layout from data
(``aerial_descriptor: conv``, a 1×1 convolution to C·N channels). The polar descriptor builds it in: for every bin
it samples the aerial features along the ray from the cell towards ``φ_j`` at the radii ``polar_radii_m`` (metres,
so the same rays at any ground resolution; bilinear, zero outside the map), and one small network shared by every
bin turns the R samples into the bin's C channels. The same aerial content seen from another direction then lands
in another bin, which is what the matching's heading rolls expect, so it needs far fewer training panoramas than a
learnt layout (docs/results.md, "The CCVPE base").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def bin_azimuths_deg(bins: int) -> torch.Tensor:
    """φ_j = 360·(j + ½)/N − 180 (N,) float32: the azimuth at the centre of ground bin j for a heading of 0."""
    return (torch.arange(bins, dtype=torch.float32) + 0.5) * (360.0 / bins) - 180.0


def ray_offsets_cells(azimuths_deg: torch.Tensor, radii_m: torch.Tensor, cell_m: float) -> torch.Tensor:
    """(N, R, 2) offsets (columns right, rows down) in cells of the points ``radii_m`` metres from a cell towards
    each azimuth (clockwise from north: east = +column, north = −row)."""
    radians = torch.deg2rad(azimuths_deg.double())[:, None]
    radii = radii_m.double()[None] / cell_m
    return torch.stack([torch.sin(radians) * radii, -torch.cos(radians) * radii], dim=-1)


def bilinear_taps(offsets: torch.Tensor, height: int, width: int, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For (N, 2) offsets in cells (columns, rows): the flat indices (N, 4, h·w) into an (h+2·pad)×(w+2·pad)
    zero-padded map of the four neighbours of every cell moved by each offset, and their bilinear weights (N, 4)."""
    origin = torch.floor(offsets)
    fraction = (offsets - origin).float()
    fx, fy = fraction[:, 0], fraction[:, 1]
    weights = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], dim=1)
    corners = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=torch.long)
    moved = origin.long()[:, None, :] + corners[None]                                  # N,4,2
    rows = torch.arange(height)[:, None] + pad
    cols = torch.arange(width)[None, :] + pad
    padded_width = width + 2 * pad
    index = (rows[None, None] + moved[..., 1, None, None]) * padded_width + cols[None, None] + moved[..., 0, None, None]
    return index.flatten(2), weights


class PolarAerialDescriptor(nn.Module):
    """Aerial features (B,F,h,w) -> descriptors (B,C,N,h,w) from rays of samples, one network for every bin.

    The network is ``Linear(R·F -> H) -> ReLU -> Linear(H -> C)`` on the R samples of a ray. Its first layer is
    applied before sampling (per radius, a 1×1 convolution F -> H; sampling is linear, so the result is the same),
    which makes it N times cheaper.
    """

    def __init__(self, in_channels: int, out_channels: int, bins: int, radii_m: list[float]) -> None:
        super().__init__()
        if not radii_m or min(radii_m) < 0:
            raise ValueError(f"model.ccvpe.polar_radii_m needs one or more radii of at least 0 m, got {radii_m}")
        self.bins = bins
        self.rings = len(radii_m)
        self.hidden = out_channels
        self.register_buffer("radii_m", torch.tensor(radii_m, dtype=torch.float32), persistent=False)
        self.register_buffer("azimuths_deg", bin_azimuths_deg(bins), persistent=False)
        self.first = nn.Conv2d(in_channels, self.hidden * self.rings, 1, bias=False)
        self.first_bias = nn.Parameter(torch.zeros(self.hidden))
        self.second = nn.Linear(self.hidden, out_channels)

    def forward(self, features: torch.Tensor, cell_m: torch.Tensor) -> torch.Tensor:
        """``cell_m`` (B,) metres per cell (samples of equal cell size share one set of rays)."""
        cell_m = cell_m.expand(features.shape[0])
        sizes = torch.unique(cell_m).tolist()
        if len(sizes) == 1:
            return self._describe(features, sizes[0])
        out = None
        for size in sizes:
            rows = (cell_m == size).nonzero().flatten()
            part = self._describe(features[rows], size)
            out = part.new_zeros(features.shape[0], *part.shape[1:]) if out is None else out
            out = out.index_copy(0, rows, part)
        return out

    def _describe(self, features: torch.Tensor, cell_m: float) -> torch.Tensor:
        batch, _, height, width = features.shape
        offsets = ray_offsets_cells(self.azimuths_deg.cpu(), self.radii_m.cpu(), cell_m)   # N,R,2
        pad = int(math.ceil(float(offsets.abs().max()))) + 1
        projected = self.first(features).view(batch, self.rings, self.hidden, height, width)
        padded = F.pad(projected, (pad, pad, pad, pad))
        tables = padded.permute(1, 3, 4, 0, 2).reshape(self.rings, -1, batch * self.hidden)  # R,P,B·H rows to gather
        total = None
        for ring in range(self.rings):
            index, weights = bilinear_taps(offsets[:, ring], height, width, pad)
            taps = tables[ring][index.to(features.device).flatten()]                          # N·4·hw,B·H
            taps = taps.view(self.bins, 4, height * width, -1)
            term = (taps * weights.to(taps)[:, :, None, None]).sum(dim=1)                       # N,hw,B·H
            total = term if total is None else total + term
        total = total.view(self.bins, height * width, batch, self.hidden).permute(2, 0, 3, 1)  # B,N,H,hw
        hidden = torch.relu(total + self.first_bias.view(1, 1, -1, 1))
        out = torch.einsum("bnkp,ck->bcnp", hidden, self.second.weight) + self.second.bias.view(1, -1, 1, 1)
        return out.reshape(batch, -1, self.bins, height, width)

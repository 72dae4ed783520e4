"""From a score map to a position: the one cell-to-metre-to-pixel conversion (method.md §4.5).

A score map of H'×W' cells comes from sliding a c×c template over an A×A satellite feature map, so
H' = A − c + 1. Cell (row, col) is the placement whose template centre lies ``(row − p0, col − p0)`` feature
cells from the satellite centre, with ``p0 = (A − c)/2 = (H' − 1)/2`` (the placement where both centres
coincide). With ``cell_m`` the satellite feature cell in metres (``meters_per_pixel · P / A``, P the padded input
side) the camera position in metres east/north of the tile centre is::

    east  =  (col − p0_col − shift) · cell_m
    north = −(row − p0_row − shift) · cell_m

and on the tile as fed (S pixels, ``meters_per_pixel`` m/px, pixel i covers [i, i+1), centre at S/2)::

    u = S/2 + east / meters_per_pixel        v = S/2 − north / meters_per_pixel

``shift`` is 0 for the exact conversion. The reference's 2-DoF evaluation instead uses a cell of 512/A satellite
pixels (S/A instead of P/A; 1.7297 instead of 1.75 px for DINOv2 at 512) and subtracts (A − c + 1)/2, i.e.
``shift = 0.5``; the localizer reproduces that with ``ModelConfig.metric_conversion = "faithful"`` (the caller
passes the reference's ``cell_m`` and ``shift = 0.5``) so published numbers can be compared like for like.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from geodistill import keys

FAITHFUL_CENTER_SHIFT = 0.5  # the reference subtracts (A - c + 1)/2 instead of (A - c)/2


def score_center(score_hw: tuple[int, int]) -> tuple[float, float]:
    """(p0_row, p0_col) = ((H' − 1)/2, (W' − 1)/2): the placement with the template centred on the tile."""
    return (score_hw[0] - 1) / 2.0, (score_hw[1] - 1) / 2.0


def cells_to_xy(rowcol: torch.Tensor, score_hw: tuple[int, int], cell_m: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
    """Score-map cell (row, col) (B,2) -> metres (east, north) (B,2) of the tile centre. ``cell_m``: (B,)."""
    p0_row, p0_col = score_center(score_hw)
    cell_m = torch.as_tensor(cell_m, dtype=rowcol.dtype, device=rowcol.device).reshape(-1)
    east = (rowcol[:, 1] - p0_col - shift) * cell_m
    north = -(rowcol[:, 0] - p0_row - shift) * cell_m
    return torch.stack([east, north], dim=-1)


def xy_to_cells(xy: torch.Tensor, score_hw: tuple[int, int], cell_m: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
    """Inverse of :func:`cells_to_xy`: metres (B,2) -> fractional score-map cell (row, col) (B,2)."""
    p0_row, p0_col = score_center(score_hw)
    cell_m = torch.as_tensor(cell_m, dtype=xy.dtype, device=xy.device).reshape(-1)
    col = xy[:, 0] / cell_m + p0_col + shift
    row = -xy[:, 1] / cell_m + p0_row + shift
    return torch.stack([row, col], dim=-1)


def xy_to_tile_uv(xy: torch.Tensor, tile_size: int | float, meters_per_pixel: torch.Tensor) -> torch.Tensor:
    """Metres east/north of the tile centre (B,2) -> continuous pixel (u, v) (B,2) on an S-pixel tile."""
    mpp = torch.as_tensor(meters_per_pixel, dtype=xy.dtype, device=xy.device).reshape(-1)
    half = tile_size / 2.0
    return torch.stack([half + xy[:, 0] / mpp, half - xy[:, 1] / mpp], dim=-1)


def tile_uv_to_xy(uv: torch.Tensor, tile_size: int | float, meters_per_pixel: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`xy_to_tile_uv`."""
    mpp = torch.as_tensor(meters_per_pixel, dtype=uv.dtype, device=uv.device).reshape(-1)
    half = tile_size / 2.0
    return torch.stack([(uv[:, 0] - half) * mpp, (half - uv[:, 1]) * mpp], dim=-1)


def spatial_log_softmax(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Log-softmax over all positions of ``scores / temperature``. (B,H,W) -> (B,H,W)."""
    flat = (scores.flatten(1) / temperature).log_softmax(dim=1)
    return flat.view_as(scores)


def argmax_cells(scores: torch.Tensor, refine: bool = False) -> torch.Tensor:
    """Argmax (row, col) (B,2) float of (B,H,W) scores; ``refine`` adds a per-axis parabola fit.

    The sub-cell offset along an axis is ``(f(−1) − f(+1)) / (2·(f(−1) − 2·f(0) + f(+1)))`` clamped to
    ±0.5 cell, and 0 on the border or where the neighbourhood is not concave.
    """
    batch, height, width = scores.shape
    index = scores.flatten(1).argmax(dim=1)
    row, col = index // width, index % width
    rowcol = torch.stack([row, col], dim=-1).to(scores.dtype if scores.is_floating_point() else torch.float32)
    if not refine:
        return rowcol
    arange = torch.arange(batch, device=scores.device)

    def offset(values_minus: torch.Tensor, values_center: torch.Tensor, values_plus: torch.Tensor) -> torch.Tensor:
        curvature = values_minus - 2 * values_center + values_plus
        raw = (values_minus - values_plus) / (2 * curvature.clamp(max=-1e-12))
        return torch.where(curvature < 0, raw.clamp(-0.5, 0.5), torch.zeros_like(raw))

    inner_row = (row > 0) & (row < height - 1)
    inner_col = (col > 0) & (col < width - 1)
    row_lo, row_hi = (row - 1).clamp(min=0), (row + 1).clamp(max=height - 1)
    col_lo, col_hi = (col - 1).clamp(min=0), (col + 1).clamp(max=width - 1)
    center = scores[arange, row, col]
    d_row = offset(scores[arange, row_lo, col], center, scores[arange, row_hi, col])
    d_col = offset(scores[arange, row, col_lo], center, scores[arange, row, col_hi])
    d_row = torch.where(inner_row, d_row, torch.zeros_like(d_row))
    d_col = torch.where(inner_col, d_col, torch.zeros_like(d_col))
    return rowcol + torch.stack([d_row, d_col], dim=-1).to(rowcol.dtype)


def expectation_cells(prob: torch.Tensor) -> torch.Tensor:
    """Soft-argmax: expected (row, col) (B,2) under a (B,H,W) probability map."""
    _, height, width = prob.shape
    rows = torch.arange(height, dtype=prob.dtype, device=prob.device)
    cols = torch.arange(width, dtype=prob.dtype, device=prob.device)
    return torch.stack([(prob.sum(dim=2) * rows).sum(dim=1), (prob.sum(dim=1) * cols).sum(dim=1)], dim=-1)


def peak_confidence(prob: torch.Tensor) -> torch.Tensor:
    """Peak probability (B,) of a (B,H,W) probability map."""
    return prob.flatten(1).amax(dim=1)


def entropy(prob: torch.Tensor) -> torch.Tensor:
    """Entropy (B,) in nats of a (B,H,W) probability map (0 = one-hot, log(H·W) = uniform)."""
    flat = prob.flatten(1)
    return -(flat * flat.clamp_min(1e-30).log()).sum(dim=1)


def predict_from_scores(
    scores: torch.Tensor,
    cell_m: torch.Tensor,
    meters_per_pixel: torch.Tensor,
    tile_size: int,
    temperature: float,
    refine: bool = False,
    shift: float = 0.0,
) -> dict[str, torch.Tensor]:
    """All position outputs of one score map.

    Args:
        scores: (B,H',W') cosine similarities.
        cell_m: (B,) metres per score-map cell.
        meters_per_pixel: (B,) metres per pixel of the tile as fed.
        tile_size: S, side of the tile as fed, pixels.
        temperature: softmax temperature of ``scores``.
        refine: sub-cell quadratic refinement of the argmax.
        shift: 0 (exact) or :data:`FAITHFUL_CENTER_SHIFT`.

    Returns:
        Dict with ``keys.SCORES, LOG_PROBS, PROB, UV_MAX, XY_MAX, UV_EXPECTATION, XY_EXPECTATION, CONFIDENCE``
        and ``keys.ENTROPY``.
    """
    score_hw = (scores.shape[1], scores.shape[2])
    log_probs = spatial_log_softmax(scores, temperature)
    prob = log_probs.exp()
    xy_max = cells_to_xy(argmax_cells(scores.detach(), refine), score_hw, cell_m, shift)
    xy_expectation = cells_to_xy(expectation_cells(prob), score_hw, cell_m, shift)
    return {
        keys.SCORES: scores,
        keys.LOG_PROBS: log_probs,
        keys.PROB: prob,
        keys.XY_MAX: xy_max,
        keys.UV_MAX: xy_to_tile_uv(xy_max, tile_size, meters_per_pixel),
        keys.XY_EXPECTATION: xy_expectation,
        keys.UV_EXPECTATION: xy_to_tile_uv(xy_expectation, tile_size, meters_per_pixel),
        keys.CONFIDENCE: peak_confidence(prob),
        keys.ENTROPY: entropy(prob),
    }


def prob_on_tile(
    prob: torch.Tensor,
    cell_m: torch.Tensor,
    meters_per_pixel: torch.Tensor,
    tile_size: int,
    shift: float = 0.0,
) -> torch.Tensor:
    """Resample a (B,H',W') probability map onto the pixels of an S×S tile, for display.

    Each tile pixel centre is converted to metres and then to a fractional score cell with the same formula as
    the predictions; the map is interpolated bilinearly between cell centres, is 0 outside the search region,
    and is scaled by (pixel area / cell area) so that it stays a probability per pixel (sums to about 1).

    Returns:
        (B,S,S) float32.
    """
    batch, height, width = prob.shape
    device = prob.device
    mpp = torch.as_tensor(meters_per_pixel, dtype=torch.float32, device=device).reshape(-1).expand(batch)
    cell = torch.as_tensor(cell_m, dtype=torch.float32, device=device).reshape(-1).expand(batch)
    centres = torch.arange(tile_size, dtype=torch.float32, device=device) + 0.5
    v, u = torch.meshgrid(centres, centres, indexing="ij")  # S,S
    uv = torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1)  # S*S,2
    grids = []
    for b in range(batch):
        xy = tile_uv_to_xy(uv, tile_size, mpp[b : b + 1])
        rowcol = xy_to_cells(xy, (height, width), cell[b : b + 1], shift)
        # align_corners=True maps index 0 and H'-1 to -1 and +1: cell centres sit on integer indices.
        x_norm = 2 * rowcol[:, 1] / max(width - 1, 1) - 1
        y_norm = 2 * rowcol[:, 0] / max(height - 1, 1) - 1
        grids.append(torch.stack([x_norm, y_norm], dim=-1).view(tile_size, tile_size, 2))
    grid = torch.stack(grids)  # B,S,S,2
    sampled = F.grid_sample(prob.float().unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    area_ratio = (mpp / cell) ** 2
    return sampled[:, 0] * area_ratio.view(-1, 1, 1)



def gaussian_log_prior(score_hw: tuple[int, int], cell_m: torch.Tensor, prior_xy: torch.Tensor,
                       sigma_m: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
    """Log of an isotropic Gaussian position prior at every score cell, up to a constant: (B,H',W').

    Args:
        score_hw: (H', W') of the score map.
        cell_m: (B,) metres per score cell.
        prior_xy: (B,2) prior position, metres east/north of the tile centre.
        sigma_m: (B,) standard deviation in metres (``inf``: no prior, all zeros).
        shift: as in :func:`cells_to_xy`.
    """
    height, width = score_hw
    p0_row, p0_col = score_center(score_hw)
    device = prior_xy.device
    cell = torch.as_tensor(cell_m, dtype=torch.float64, device=device).reshape(-1, 1, 1)
    rows = torch.arange(height, dtype=torch.float64, device=device).view(1, -1, 1)
    cols = torch.arange(width, dtype=torch.float64, device=device).view(1, 1, -1)
    east = (cols - p0_col - shift) * cell
    north = -(rows - p0_row - shift) * cell
    prior = prior_xy.to(torch.float64)
    squared = (east - prior[:, 0, None, None]) ** 2 + (north - prior[:, 1, None, None]) ** 2
    sigma = torch.as_tensor(sigma_m, dtype=torch.float64, device=device).reshape(-1, 1, 1)
    return (-squared / (2.0 * sigma ** 2)).to(torch.float32)


def fuse_location_prior(log_probs: torch.Tensor, cell_m: torch.Tensor, meters_per_pixel: torch.Tensor,
                        tile_size: int, prior_xy: torch.Tensor, sigma_m: torch.Tensor, refine: bool = False,
                        shift: float = 0.0) -> dict[str, torch.Tensor]:
    """The position outputs of a location probability multiplied by a Gaussian prior and renormalised.

    ``log_probs`` (B,H',W') is the model's log-probability; the result has the keys of
    :func:`predict_from_scores` except ``keys.SCORES`` (the model's similarities are unchanged). A sample with
    ``sigma_m = inf`` keeps its distribution.
    """
    log_prior = gaussian_log_prior((log_probs.shape[1], log_probs.shape[2]), cell_m, prior_xy, sigma_m, shift)
    fused = predict_from_scores(log_probs.float() + log_prior, cell_m, meters_per_pixel, tile_size, 1.0, refine, shift)
    fused.pop(keys.SCORES)
    return fused

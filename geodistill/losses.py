"""Losses (method.md §5): weak matching, distillation cross-entropy, orientation soft-label cross-entropy.

Each loss returns a dict of per-sample terms of shape (B,) plus ``"total"`` (a scalar, the mean of the main
per-sample term); only the training loop reduces further. Per-level inputs are dicts ``level -> tensor``
(a bare tensor counts as one level, named 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

WEAK_SCALE = 10.0


def _as_levels(value: torch.Tensor | dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return {0: value}
    if not value:
        raise ValueError("expected at least one level")
    return dict(value)


def weak_matching_loss(distances: torch.Tensor | dict[int, torch.Tensor], scale: float = WEAK_SCALE) -> dict[str, torch.Tensor]:
    """Soft-margin matching loss over in-batch negatives (method.md §5.1).

    For each level, from D[m, n] = min over placements of the distance between satellite m and template n::

        L_l = 1/(B(B−1)) · Σ_m Σ_n log(1 + exp(scale · (D[m, m] − D[m, n])))

    The diagonal terms (each log 2, no gradient) are kept, as in the reference. The per-sample term of satellite
    m is ``1/(B−1) · Σ_n ...``, so its mean over the batch is L_l.

    Args:
        distances: (B,B) or level -> (B,B), rows = satellites, columns = panoramas/templates.
        scale: the soft-margin scale α (10).

    Returns:
        ``weak/<level>`` (B,) per level, ``weak`` (B,) mean over levels, ``total`` scalar.
    """
    levels = _as_levels(distances)
    terms = {}
    for level, matrix in levels.items():
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"level {level}: D must be a square (B,B) matrix, got {tuple(matrix.shape)}")
        batch = matrix.shape[0]
        if batch < 2:
            raise ValueError("the weak matching loss needs at least 2 pairs per batch (in-batch negatives)")
        margins = matrix.diagonal().unsqueeze(1) - matrix  # B,B: D[m,m] - D[m,n]
        terms[f"weak/{level}"] = F.softplus(scale * margins).sum(dim=1) / (batch - 1)
    weak = torch.stack(list(terms.values())).mean(dim=0)
    return {**terms, "weak": weak, "total": weak.mean()}


def distillation_loss(scores_teacher: torch.Tensor | dict[int, torch.Tensor],
                      scores_student: torch.Tensor | dict[int, torch.Tensor],
                      tau_teacher: float = 0.06, tau_student: float = 0.06) -> dict[str, torch.Tensor]:
    """Teacher-to-student cross-entropy over all positions (method.md §5.2).

    With similarities s = cos (= 1 − d/2) per level::

        P_t = softmax(s_teacher / τ_t)   (detached)      log P_s = log_softmax(s_student / τ_s)
        L_l[b] = −Σ_p P_t[b, p] · log P_s[b, p]

    Args:
        scores_teacher, scores_student: (B,H,W) or level -> (B,H,W) cosine maps with matching shapes.
        tau_teacher, tau_student: softmax temperatures.

    Returns:
        ``distill/<level>`` (B,) per level, ``distill`` (B,) mean over levels, ``total`` scalar.
    """
    teacher, student = _as_levels(scores_teacher), _as_levels(scores_student)
    if set(teacher) != set(student):
        raise ValueError(f"teacher levels {sorted(teacher)} differ from student levels {sorted(student)}")
    terms = {}
    for level in sorted(student):
        s_teacher, s_student = teacher[level], student[level]
        if s_teacher.shape != s_student.shape:
            raise ValueError(f"level {level}: teacher {tuple(s_teacher.shape)} vs student {tuple(s_student.shape)}")
        target = torch.softmax(s_teacher.detach().flatten(1).float() / tau_teacher, dim=1)
        log_prob = torch.log_softmax(s_student.flatten(1).float() / tau_student, dim=1)
        terms[f"distill/{level}"] = -(target * log_prob).sum(dim=1)
    distill = torch.stack(list(terms.values())).mean(dim=0)
    return {**terms, "distill": distill, "total": distill.mean()}


def gaussian_soft_labels(target: torch.Tensor, num_classes: int, sigma: float = 1.0, circular: bool = False) -> torch.Tensor:
    """q_k ∝ exp(−(k − y)² / (2σ²)), normalised over k. (B,) class positions (may be fractional) -> (B,K).

    ``circular`` measures k − y around the circle of K classes (for full-circle heading classes).
    """
    classes = torch.arange(num_classes, dtype=torch.float32, device=target.device)
    delta = classes.unsqueeze(0) - target.float().unsqueeze(1)  # B,K
    if circular:
        delta = torch.remainder(delta + num_classes / 2.0, float(num_classes)) - num_classes / 2.0
    logits = -(delta**2) / (2.0 * sigma * sigma)
    return torch.softmax(logits, dim=1)


def orientation_loss(logits: torch.Tensor, target: torch.Tensor, sigma: float = 1.0, circular: bool = False) -> dict[str, torch.Tensor]:
    """Cross-entropy against Gaussian soft labels (method.md §5.3).

    Args:
        logits: (B,K) class scores.
        target: (B,) class positions (integer bins or fractional) or (B,K) soft labels summing to 1.
        sigma: Gaussian width in classes.
        circular: classes wrap around (full circle).

    Returns:
        ``orientation`` (B,) and ``total`` scalar.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (B,K), got {tuple(logits.shape)}")
    if target.dim() == 2:
        if target.shape != logits.shape:
            raise ValueError(f"soft labels {tuple(target.shape)} must match logits {tuple(logits.shape)}")
        soft = target.float()
    else:
        soft = gaussian_soft_labels(target, logits.shape[1], sigma, circular)
    per_sample = -(soft * torch.log_softmax(logits.float(), dim=1)).sum(dim=1)
    return {"orientation": per_sample, "total": per_sample.mean()}


def location_cross_entropy(logits: torch.Tensor, rowcol: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """InfoNCE over the cells of a map: −log softmax(logits / T) at the true cell (rounded to the nearest).

    Every other cell of the same map is a negative. Args: logits (B,H,W), rowcol (B,2) fractional true cells.
    Returns (B,).
    """
    batch, height, width = logits.shape
    row = rowcol[:, 0].round().long().clamp(0, height - 1)
    col = rowcol[:, 1].round().long().clamp(0, width - 1)
    log_prob = torch.log_softmax(logits.flatten(1).float() / temperature, dim=1)
    return -log_prob[torch.arange(batch, device=logits.device), row * width + col]


def disc_mass_loss(logits: torch.Tensor, centre_rowcol: torch.Tensor, radius_cells: torch.Tensor,
                   temperature: float = 1.0) -> torch.Tensor:
    """−log of the softmax(logits / T) mass inside a disc of cells: "the answer lies within this radius".

    The noisy-GPS term: a label known only to within ``radius_cells`` of ``centre_rowcol`` rewards every cell
    of the disc alike (the cell nearest the centre always counts, also for a radius below one cell). Args:
    logits (B,H,W), centre_rowcol (B,2) fractional cells, radius_cells (B,). Returns (B,).
    """
    batch, height, width = logits.shape
    rows = torch.arange(height, device=logits.device, dtype=torch.float32).view(1, height, 1)
    cols = torch.arange(width, device=logits.device, dtype=torch.float32).view(1, 1, width)
    centre = centre_rowcol.float()
    squared = (rows - centre[:, 0].view(-1, 1, 1)) ** 2 + (cols - centre[:, 1].view(-1, 1, 1)) ** 2
    inside = squared <= radius_cells.float().view(-1, 1, 1) ** 2
    nearest = squared.flatten(1).argmin(dim=1)
    inside = inside.flatten(1).scatter(1, nearest.view(-1, 1), True)
    log_prob = torch.log_softmax(logits.flatten(1).float() / temperature, dim=1)
    return -torch.logsumexp(log_prob.masked_fill(~inside, float("-inf")), dim=1)


def roll_cross_entropy(logits: torch.Tensor, heading_deg: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Cross-entropy over K heading rolls (roll k = heading k·360/K) against the true heading, split linearly
    between its two nearest rolls. Args: logits (B,K), heading_deg (B,). Returns (B,)."""
    num = logits.shape[1]
    position = torch.remainder(heading_deg.float(), 360.0) * (num / 360.0)
    lower = torch.floor(position)
    upper_weight = position - lower
    target = torch.zeros_like(logits, dtype=torch.float32)
    target.scatter_(1, lower.long().view(-1, 1) % num, (1.0 - upper_weight).view(-1, 1))
    target.scatter_add_(1, (lower.long().view(-1, 1) + 1) % num, upper_weight.view(-1, 1))
    return -(target * torch.log_softmax(logits.float() / temperature, dim=1)).sum(dim=1)


def heading_vector_loss(vectors: torch.Tensor, heading_deg: torch.Tensor) -> torch.Tensor:
    """‖v/‖v‖ − (cos h, sin h)‖² = 2 − 2·cos(angle between them), in [0, 4]. vectors (B,2), heading (B,) -> (B,)."""
    radians = torch.deg2rad(heading_deg.float())
    target = torch.stack([torch.cos(radians), torch.sin(radians)], dim=1)
    unit = vectors.float() / vectors.float().norm(dim=1, keepdim=True).clamp_min(1e-6)
    return (unit - target).square().sum(dim=1)

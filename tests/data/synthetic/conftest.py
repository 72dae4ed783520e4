"""Shared small renders of the synthetic generator (module-scoped: each costs about a second)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geodistill.geometry.bev import project_to_bev


def bev_ncc_argmax(pano_rgb: np.ndarray, tile_rgb: np.ndarray, tile_mpp: float, camera_height_m: float,
                   cells: int = 64) -> tuple[float, float]:
    """Camera pixel (col, row) on the tile found by raw grey-level NCC of the flat-world BEV."""
    pano = torch.from_numpy(pano_rgb).float().mean(-1)[None, None] / 255.0
    bev, valid = project_to_bev(pano, cells, tile_mpp, camera_height_m)
    template = bev[0, 0].float()
    weight = valid[0].float()
    template = (template - (template * weight).sum() / weight.sum()) * weight
    image = torch.from_numpy(tile_rgb).float().mean(-1)[None, None] / 255.0
    t = template[None, None]
    w = weight[None, None]
    n = weight.sum()
    sum_i = F.conv2d(image, w)
    sum_i2 = F.conv2d(image ** 2, w)
    var_i = (sum_i2 - sum_i ** 2 / n).clamp_min(1e-9)
    score = F.conv2d(image, t) / (var_i.sqrt() * template.norm())
    index = int(score.flatten().argmax())
    row, col = divmod(index, score.shape[-1])
    return col + cells / 2, row + cells / 2


@pytest.fixture(scope="module")
def flat_pair():
    from geodistill.data.synthetic.scene import render_pair

    return render_pair(5, "midrise", "easy", (512, 256), 160, 0.25, flat=True, offset_px=(7.0, -5.0),
                       world_size_m=200.0)


@pytest.fixture
def bev_ncc():
    return bev_ncc_argmax

import pytest
import torch

from geodistill.models.bev_projection import bev_cell_m, project_fov_cone, project_template, template_cells


def test_paper_template_sizes():
    assert template_cells(296, 0.4) == 118 and template_cells(74, 0.4) == 29
    assert template_cells(64, 0.4) == 25 and template_cells(16, 0.4) == 6


def test_matched_and_faithful_cells():
    mpp = torch.tensor([0.14156])
    matched = bev_cell_m(mpp, 518, 296, level=2, grid="matched")
    faithful = bev_cell_m(mpp, 518, 296, level=2, grid="faithful")
    assert matched.item() == pytest.approx(0.14156 * 1.75)
    assert faithful.item() == pytest.approx(0.14156 * 2.0)
    assert (faithful / matched).item() == pytest.approx(8 / 7)  # the reference's mismatch
    with pytest.raises(ValueError, match="bev_grid"):
        bev_cell_m(mpp, 518, 296, level=2, grid="other")


def test_template_and_cone_shapes():
    f_pano = torch.randn(2, 4, 16, 32, dtype=torch.bfloat16)
    template, valid = project_template(f_pano, 7, torch.tensor([1.0, 2.0]), torch.tensor([2.0, 1.5]))
    assert template.shape == (2, 4, 7, 7) and template.dtype == torch.float32 and valid.all()
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[:, 8:24] = True  # north half
    cone = project_fov_cone(mask, 8, torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]))
    assert cone.shape == (2, 8, 8)
    assert cone[:, 0].min() == 1 and cone[:, -1].max() == 0  # north row visible, south row not

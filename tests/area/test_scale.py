"""``plan_tiles`` for models that search only a centred part of the tile (``model.search_region``)."""

from __future__ import annotations

import pytest

from geodistill import settings
from geodistill.area.scale import MAX_COARSENING, PRIOR_SIGMAS_IN_VIEW, plan_tiles, search_radius_m
from geodistill.checkpoint import save_checkpoint
from geodistill.config import load_config
from geodistill.inference import Localizer
from geodistill.models.localizer import LocalizerNet


def _localizer(folder, search_region: float) -> Localizer:
    config = load_config(settings.REPO_ROOT / "training" / "configs" / "tiny.yaml")
    config.model.search_region = search_region
    save_checkpoint(folder, config, {"model": LocalizerNet(config.model).state_dict()},
                    {"task": "weak", "role": "weak", "deploy": "student"})
    return Localizer.from_checkpoint(folder)


@pytest.fixture(scope="module")
def half_region(tmp_path_factory) -> Localizer:
    return _localizer(tmp_path_factory.mktemp("half_region"), 0.5)


def test_search_radius_is_half_the_searched_square(half_region, tmp_path):
    whole = _localizer(tmp_path / "whole", 1.0)
    size = half_region.sat_size
    assert search_radius_m(half_region, 0.5) == pytest.approx(0.5 * size / 2 * 0.5)
    assert 0.5 * size / 2 * 0.5 < search_radius_m(whole, 0.5) <= size / 2 * 0.5  # its whole score map


def test_plan_coarsens_the_tile_so_the_prior_fits_the_searched_square(half_region):
    model_radius = search_radius_m(half_region, plan_tiles(half_region, 1.0).model_mpp)
    fitting_sigma = 0.8 * model_radius / PRIOR_SIGMAS_IN_VIEW          # fits at the model's scale
    plan = plan_tiles(half_region, fitting_sigma)
    assert plan.meters_per_pixel == pytest.approx(plan.model_mpp)
    assert plan.search_radius_m == pytest.approx(model_radius)
    wider_sigma = 1.2 * model_radius / PRIOR_SIGMAS_IN_VIEW           # needs a tile 1.2 times coarser
    plan = plan_tiles(half_region, wider_sigma)
    assert plan.meters_per_pixel == pytest.approx(1.2 * plan.model_mpp)
    assert plan.search_radius_m == pytest.approx(PRIOR_SIGMAS_IN_VIEW * wider_sigma)
    plan = plan_tiles(half_region, 10 * model_radius)                 # capped
    assert plan.meters_per_pixel == pytest.approx(MAX_COARSENING * plan.model_mpp)

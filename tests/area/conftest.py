"""A tiny synthetic area and its dataset, shared by the own-area tests (generated once per session, a few seconds);
a small bench area (texture orthophoto, geotagged JPEGs) and a tiny localizer for the ``refine`` tests."""

from __future__ import annotations

import pytest

from geodistill.area.bench import write_bench_area
from geodistill.area.dataset import make_dataset
from geodistill.area.synthetic import ORTHOPHOTO_FILE, PANORAMA_DIR, generate_area

TINY_AREA = dict(panos=6, seed=3, tier="hard", pano_size=(256, 128), extent_m=200.0, meters_per_pixel=0.5,
                 camera_margin_m=50.0, progress=False)
TINY_TILE_MPP = 0.05  # 32 m tiles (640 x 0.05), so the tiny area's priors have all four tiles inside it


@pytest.fixture(scope="session")
def tiny_area(tmp_path_factory):
    """(root, summary) of a 6-panorama hard-tier area: 200 m orthophoto at 0.5 m/px, 256x128 panoramas."""
    root = tmp_path_factory.mktemp("area") / "tiny"
    return root, generate_area(root, **TINY_AREA)


@pytest.fixture(scope="session")
def tiny_area_dataset(tiny_area, tmp_path_factory):
    """(root, summary) of ``make_dataset`` on the tiny area (EXIF GPS, 128-px tile files)."""
    area, _ = tiny_area
    root = tmp_path_factory.mktemp("area_dataset") / "tiny"
    return root, make_dataset(area / ORTHOPHOTO_FILE, area / PANORAMA_DIR, root, meters_per_pixel=TINY_TILE_MPP,
                              tile_px=128, progress=False)


@pytest.fixture
def bench_area(tmp_path):
    """(orthophoto.tif in UTM, panorama folder with 4 geotagged 256x128 JPEGs) in a fresh folder."""
    return write_bench_area(tmp_path / "area", 4, seed=3, ortho_px=900, pano_size=(256, 128), spread_m=20.0)


@pytest.fixture
def tiny_localizer(tmp_path, tiny_checkpoint):
    from geodistill.inference import Localizer

    return Localizer.from_checkpoint(tiny_checkpoint(tmp_path / "tiny_ckpt"))

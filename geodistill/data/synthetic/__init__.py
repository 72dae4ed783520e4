"""The synthetic city world: paired north-up aerial tiles and street panoramas with exact ground truth.

``generate_dataset(out_dir, ...)`` writes the VIGOR layout (see :mod:`.writer`); the lower-level pieces
are :func:`.world.generate_world`, :func:`.aerial.render_aerial` and
:func:`.panorama_render.render_panorama`. Specification: ``docs/synthetic-world.md``.
"""

from __future__ import annotations

from geodistill.data.synthetic.dataset import generate_dataset
from geodistill.data.synthetic.generate import CITIES
from geodistill.data.synthetic.world import GENERATOR_VERSION, STYLES

TIER_NAMES = ("easy", "medium", "hard")

__all__ = ["generate_dataset", "CITIES", "GENERATOR_VERSION", "STYLES", "TIER_NAMES"]

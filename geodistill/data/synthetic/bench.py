"""Benchmark rows of the synthetic generator (single process, so the rates are per core)."""

from __future__ import annotations

import statistics
import time

import numpy as np

from geodistill.data.synthetic.environment import get_tier
from geodistill.data.synthetic.generate import PANOS_PER_WORLD
from geodistill.data.synthetic.scene import (
    derive_seed, draw_aerial_view, draw_ground_view, draw_hidden, place_cameras, render_ground, render_mosaic,
)
from geodistill.data.synthetic.world import generate_world

NEW_YORK_MPP = 0.113248


def bench_synthetic(repeats: int = 5, quick: bool = False, tier: str = "hard") -> list[dict]:
    """Time world generation, the aerial mosaic and panoramas; median over ``repeats`` worlds.

    Each repeat builds a fresh world (its own seed, midrise/downtown/suburb in turn), renders the
    1280-px aerial mosaic that holds the 9 tiles of 640 px of a world (``quick``: 320 px, 160-px tiles)
    and two 1024x512 panoramas (``quick``: 256x128). A pair costs one panorama plus an eighth of the
    world and of the mosaic, since a world serves ``PANOS_PER_WORLD`` panoramas.

    Returns:
        Rows ``{"name", "size", "median_s", "pairs_per_s_per_core", "panos_per_s", "note"}``
        (rates only where they apply, else None).
    """
    repeats = max(int(repeats), 1)
    tier_spec = get_tier(tier)
    pano_size = (256, 128) if quick else (1024, 512)
    tile_px = 160 if quick else 640
    mosaic_px = 2 * tile_px
    mpp = NEW_YORK_MPP * 640 / tile_px
    world_s, mosaic_s, pano_s = [], [], []
    for repeat in range(repeats):
        seed = derive_seed(9001, repeat)
        start = time.perf_counter()
        world = generate_world(seed, ("midrise", "downtown", "suburb")[repeat % 3])
        world_s.append(time.perf_counter() - start)
        spots = place_cameras(world, np.random.default_rng(seed), 2, 320 * NEW_YORK_MPP - 0.5)
        hidden_aerial, hidden_ground = draw_hidden(world, np.random.default_rng(seed + 1), tier_spec)
        aerial = draw_aerial_view(world, tier_spec, seed + 2, hidden_aerial)
        start = time.perf_counter()
        render_mosaic(world, aerial, (0.0, 0.0), mosaic_px, mpp)
        mosaic_s.append(time.perf_counter() - start)
        for index, (east, north) in enumerate(spots):
            view = draw_ground_view(world, tier_spec, seed + 3 + index, east, north, aerial.env)
            start = time.perf_counter()
            render_ground(world, view, pano_size, hidden_ground)
            pano_s.append(time.perf_counter() - start)
    world_m, mosaic_m, pano_m = (statistics.median(x) for x in (world_s, mosaic_s, pano_s))
    pair = pano_m + (world_m + mosaic_m) / PANOS_PER_WORLD
    pano_text = f"{pano_size[0]}x{pano_size[1]}"
    return [
        {"name": "synthetic world generation", "size": "480 m", "median_s": world_m, "pairs_per_s_per_core": None,
         "panos_per_s": None, "note": f"{tier} tier"},
        {"name": "synthetic aerial mosaic", "size": f"{mosaic_px}^2 (9 tiles of {tile_px}^2)", "median_s": mosaic_m,
         "pairs_per_s_per_core": None, "panos_per_s": None, "note": "shadows, lean, degradation, JPEG"},
        {"name": "synthetic panorama", "size": pano_text, "median_s": pano_m, "pairs_per_s_per_core": None,
         "panos_per_s": 1.0 / pano_m, "note": "heightfield ray casting + primitives"},
        {"name": "synthetic pair (tiles amortised)", "size": f"{pano_text} / {tile_px}^2", "median_s": pair,
         "pairs_per_s_per_core": 1.0 / pair, "panos_per_s": 1.0 / pair,
         "note": f"world and mosaic shared by {PANOS_PER_WORLD} panoramas; target >= 0.5 pair/s/core"},
    ]

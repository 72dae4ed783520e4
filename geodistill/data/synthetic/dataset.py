"""``generate_dataset``: the whole synthetic VIGOR-layout set, resumable and parallel."""

from __future__ import annotations

import logging
import multiprocessing
import time
from pathlib import Path

from geodistill.data.synthetic import writer
from geodistill.data.synthetic.environment import TIERS
from geodistill.data.synthetic.generate import (
    CITIES, _check_config, _worker_init, plan_tasks, render_world,
)
from geodistill.data.synthetic.world import GENERATOR_VERSION, STYLES

logger = logging.getLogger("geodistill.data.synthetic")


def _validate(panos_per_city, pano_size, tier, cities, workers, styles, tile_size):
    if int(panos_per_city) < 1:
        raise ValueError(f"panos_per_city must be at least 1, got {panos_per_city}")
    width, height = pano_size
    if width != 2 * height or height < 16:
        raise ValueError(f"pano_size must be a 2:1 (W, H) with W = 2 H and H >= 16, got {pano_size}")
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; expected one of {tuple(TIERS)}")
    unknown = [c for c in cities if c not in CITIES]
    if unknown or not cities:
        raise ValueError(f"unknown or no cities {unknown or cities}; expected some of {tuple(CITIES)}")
    bad = [s for s in styles if s not in STYLES]
    if bad or not styles:
        raise ValueError(f"unknown or no styles {bad or styles}; expected some of {STYLES}")
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if tile_size < 32 or tile_size % 32:
        raise ValueError(f"tile_size must be a multiple of 32 (640 for VIGOR), got {tile_size}")


def generate_dataset(out_dir, panos_per_city: int = 16, seed: int = 0, pano_size=(1024, 512), tier: str = "hard",
                     cities=tuple(CITIES), workers: int = 1, styles=STYLES, progress: bool = True,
                     tile_size: int = 640) -> dict:
    """Generate (or finish) a synthetic dataset in the VIGOR layout under ``out_dir``.

    Deterministic per ``seed`` (independent of ``workers``); samples already on disk are kept, so an
    interrupted run resumes. Raising ``panos_per_city`` later extends the same set.

    Args:
        out_dir: dataset root.
        panos_per_city: panoramas per city (8 per world).
        seed: dataset seed.
        pano_size: (W, H) of the panoramas, W = 2 H.
        tier: "easy" | "medium" | "hard".
        cities: subset of NewYork, Seattle, SanFrancisco, Chicago.
        workers: rendering processes.
        styles: allowed world styles (downtown, midrise, suburb).
        progress: show a tqdm progress bar.
        tile_size: satellite tile side (640 like VIGOR; labels are always in 640-px pixels).

    Returns:
        Summary: root, per-city panorama and tile counts, rendered/reused counts, seconds, pairs per second.
    """
    cities, styles = tuple(cities), tuple(styles)
    _validate(panos_per_city, pano_size, tier, cities, workers, styles, tile_size)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    _check_config(root, {"generator_version": GENERATOR_VERSION, "seed": int(seed), "tier": tier,
                         "pano_size": [int(pano_size[0]), int(pano_size[1])], "tile_size": int(tile_size),
                         "styles": list(styles)})
    tasks = plan_tasks(root, int(panos_per_city), int(seed), pano_size, tier, cities, int(tile_size), styles)
    total = sum(t.panos for t in tasks)
    start = time.perf_counter()
    records: dict[str, list[dict]] = {c: [] for c in cities}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="pano", desc="synth", dynamic_ncols=True)

    def collect(result):
        for record in result:
            records[record["city"]].append(record)
        if bar is not None:
            bar.update(len(result))

    before = _count_existing(root, cities)
    if workers == 1 or len(tasks) == 1:
        for task in tasks:
            collect(render_world(task))
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(workers, len(tasks)), initializer=_worker_init) as pool:
            for result in pool.imap_unordered(render_world, tasks):
                collect(result)
    if bar is not None:
        bar.close()
    summary_cities = {}
    for city in cities:
        tiles = sorted({t["name"] for r in records[city] for t in r["tiles"]})
        metadata = {"city": city, "meters_per_pixel": CITIES[city].meters_per_pixel, "tile_size_px": 640,
                    "generator": "geodistill-synthetic", "generator_version": GENERATOR_VERSION, "tier": tier,
                    "seed": int(seed), "area": CITIES[city].area, "latitude_deg": CITIES[city].lat_deg}
        writer.write_city_files(root, city, records[city], tiles, metadata)
        summary_cities[city] = {"panoramas": len(records[city]), "tiles": len(tiles)}
    seconds = time.perf_counter() - start
    fresh = total - before
    return {"root": str(root), "cities": summary_cities, "panoramas": total, "rendered": max(fresh, 0),
            "reused": min(before, total), "seconds": seconds,
            "pairs_per_second": (max(fresh, 0) / seconds) if seconds > 0 else 0.0,
            "generator_version": GENERATOR_VERSION, "tier": tier, "seed": int(seed)}


def _count_existing(root: Path, cities) -> int:
    count = 0
    for city in cities:
        folder = root / city / "panorama"
        if folder.is_dir():
            count += sum(1 for p in folder.glob("*.jpg") if writer.sidecar_path(p).is_file())
    return count

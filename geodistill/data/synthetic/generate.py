"""Dataset generation in the VIGOR layout: cities, worlds, tiles on a half-tile grid, panoramas, splits."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from geodistill.data.synthetic import writer
from geodistill.data.synthetic.environment import get_tier
from geodistill.data.synthetic.scene import (
    derive_seed, draw_aerial_view, draw_ground_view, draw_hidden, place_cameras, render_ground, render_mosaic,
)
from geodistill.data.synthetic.world import GENERATOR_VERSION, STYLES, generate_world
from geodistill.errors import DataError
from geodistill.geometry.frames import MERCATOR_METERS_PER_PIXEL_ZOOM0, xy_to_latlon

logger = logging.getLogger("geodistill.data.synthetic")

PANOS_PER_WORLD = 8
WORLD_SPACING_HALF_TILES = 64  # worlds of a city are about 2.3 km apart
CONFIG_FILE = "synthetic_dataset.json"


@dataclass(frozen=True)
class CitySpec:
    """A VIGOR city: its tile resolution, a longitude, a style mix and a seed salt."""

    name: str
    code: str
    meters_per_pixel: float
    lon_deg: float
    style_mix: tuple[float, float, float]  # downtown, midrise, suburb
    salt: int
    area: str  # "train" (same-area and cross-area training) or "cross" (cross-area test)

    @property
    def lat_deg(self) -> float:
        """Latitude where Web-Mercator zoom 20 has exactly this city's metres per pixel."""
        return math.degrees(math.acos(self.meters_per_pixel * 2 ** 20 / MERCATOR_METERS_PER_PIXEL_ZOOM0))


CITIES = {
    "NewYork": CitySpec("NewYork", "NY", 0.113248, -73.95, (0.45, 0.40, 0.15), 101, "train"),
    "Seattle": CitySpec("Seattle", "SE", 0.100817, -122.33, (0.25, 0.45, 0.30), 202, "train"),
    "SanFrancisco": CitySpec("SanFrancisco", "SF", 0.118141, -122.42, (0.20, 0.55, 0.25), 303, "cross"),
    "Chicago": CitySpec("Chicago", "CH", 0.111262, -87.65, (0.40, 0.20, 0.40), 404, "cross"),
}


@dataclass(frozen=True)
class WorldTask:
    """Everything a worker needs to render one world's tiles and panoramas."""

    root: str
    city: str
    world_index: int
    panos: int
    seed: int
    tier: str
    pano_size: tuple[int, int]
    tile_size: int
    styles: tuple[str, ...]


def choose_style(city: CitySpec, seed: int, world_index: int, styles: tuple[str, ...]) -> str:
    weights = np.array([w if s in styles else 0.0 for s, w in zip(STYLES, city.style_mix)])
    if weights.sum() == 0:
        weights = np.array([1.0 if s in styles else 0.0 for s in STYLES])
    rng = np.random.default_rng(derive_seed(seed, city.salt, world_index, 1))
    return STYLES[int(rng.choice(3, p=weights / weights.sum()))]


def _tiles_of_camera(east, north, half_m):
    """The four covering tiles (i, j) of a camera, positive (nearest centre) first."""
    i0, j0 = math.floor(east / half_m), math.floor(north / half_m)
    cover = [(i, j) for i in (i0, i0 + 1) for j in (j0, j0 + 1)]
    return sorted(cover, key=lambda ij: (math.hypot(east - ij[0] * half_m, north - ij[1] * half_m), ij))


def render_world(task: WorldTask) -> list[dict]:
    """Render (or reuse) one world's tiles and panoramas; returns their label records."""
    root, city = Path(task.root), CITIES[task.city]
    tier = get_tier(task.tier)
    mpp = city.meters_per_pixel
    half_m = 320 * mpp
    anchor_east = task.world_index * WORLD_SPACING_HALF_TILES * half_m
    city_ref = np.array([city.lat_deg, city.lon_deg])

    def latlon(east, north):
        ll = xy_to_latlon(np.array([anchor_east + east, north], np.float64), city_ref)
        return float(ll[0]), float(ll[1])

    world_seed = derive_seed(task.seed, city.salt, task.world_index, 0)
    style = choose_style(city, task.seed, task.world_index, task.styles)
    start = time.perf_counter()
    world = generate_world(world_seed, style)
    world_s = time.perf_counter() - start
    spots = place_cameras(world, np.random.default_rng(derive_seed(task.seed, city.salt, task.world_index, 2)),
                          task.panos, half_m - 0.5)
    hidden_aerial, hidden_ground = draw_hidden(world, np.random.default_rng(derive_seed(world_seed, 3)), tier)
    aerial = draw_aerial_view(world, tier, derive_seed(world_seed, 4), hidden_aerial)

    records, tiles_needed = [], {}
    for index, (east, north) in enumerate(spots):
        pano_id = f"syn-{city.code}-s{task.seed}-w{task.world_index:03d}-p{index:02d}"
        lat, lon = latlon(east, north)
        pano_name = writer.pano_file_name(pano_id, lat, lon)
        tiles = []
        for i, j in _tiles_of_camera(east, north, half_m):
            name = writer.tile_file_name(*latlon(i * half_m, j * half_m))
            tiles_needed[(i, j)] = name
            col = 320 + (east - i * half_m) / mpp
            row = 320 - (north - j * half_m) / mpp
            tiles.append((name, *writer.delta_from_pixel(col, row), (i, j), col, row))
        first_is_train = derive_seed(task.seed, city.salt, task.world_index, 5, index // 2) % 2 == 0
        split = "train" if (index % 2 == 0) == first_is_train else "test"
        records.append({
            "pano_id": pano_id, "pano_name": pano_name, "index": index, "east_m": east, "north_m": north,
            "latlon": [lat, lon], "tiles": tiles, "same_area_split": split,
            "label_line": writer.label_line(pano_name, [(t[0], t[1], t[2]) for t in tiles]),
        })

    sat_dir = root / city.name / "satellite"
    missing = {ij: name for ij, name in tiles_needed.items() if not (sat_dir / name).is_file()}
    aerial_s = 0.0
    if missing:
        start = time.perf_counter()
        _render_tiles(world, aerial, missing, half_m, mpp, task.tile_size, sat_dir)
        aerial_s = time.perf_counter() - start

    pano_dir = root / city.name / "panorama"
    out = []
    for rec in records:
        pano_path = pano_dir / rec["pano_name"]
        side = writer.sidecar_path(pano_path)
        if pano_path.is_file() and side.is_file():
            try:
                out.append(json.loads(side.read_text()))
                continue
            except ValueError:
                logger.warning("re-rendering %s: unreadable sidecar", pano_path)
        view = draw_ground_view(world, tier, derive_seed(world_seed, 6, rec["index"]), rec["east_m"], rec["north_m"],
                                aerial.env)
        render = render_ground(world, view, task.pano_size, hidden_ground)
        writer.atomic_write_bytes(pano_path, writer.encode_jpeg(render.image))
        positive = rec["tiles"][0]
        sidecar = {
            "generator": "geodistill-synthetic", "generator_version": GENERATOR_VERSION, "tier": task.tier,
            "city": city.name, "pano_name": rec["pano_name"], "pano_id": rec["pano_id"],
            "dataset_seed": task.seed, "world_index": task.world_index, "world_seed": world_seed, "style": style,
            "camera_east_m": rec["east_m"], "camera_north_m": rec["north_m"],
            "camera_height_m": view.camera.height_m, "heading_deg": 0.0, "roll_deg": view.camera.roll_deg,
            "pitch_deg": view.camera.pitch_deg, "latlon": rec["latlon"], "meters_per_pixel": mpp, "tile_size_px": 640,
            "positive_tile": positive[0], "camera_col": positive[4], "camera_row": positive[5],
            "xy_gt_m": [rec["east_m"] - positive[3][0] * half_m, rec["north_m"] - positive[3][1] * half_m],
            "tiles": [{"name": t[0], "delta_row": t[1], "delta_col": t[2], "col": t[4], "row": t[5]} for t in rec["tiles"]],
            "label_line": rec["label_line"], "same_area_split": rec["same_area_split"],
            "pano_size": list(task.pano_size), "ground": view.to_dict(), "aerial": aerial.to_dict(),
            "hidden_buildings_ground": [int(x) for x in hidden_ground],
            "timings_s": {"world": world_s, "aerial_mosaic": aerial_s, **render.timings},
        }
        writer.write_json(side, sidecar)
        out.append(sidecar)
    return out


def _render_tiles(world, aerial, tiles: dict, half_m, mpp, tile_size, sat_dir: Path) -> None:
    """Render one mosaic over all missing tiles and cut them out (their centres are half a tile apart)."""
    i_min, i_max = min(i for i, _ in tiles), max(i for i, _ in tiles)
    j_min, j_max = min(j for _, j in tiles), max(j for _, j in tiles)
    half_px = tile_size // 2
    size = max(i_max - i_min, j_max - j_min) * half_px + tile_size
    mpp_render = mpp * 640 / tile_size
    center = ((i_min * half_m + (size / 2 - half_px) * mpp_render), (j_max * half_m - (size / 2 - half_px) * mpp_render))
    mosaic = render_mosaic(world, aerial, center, size, mpp_render)
    for (i, j), name in tiles.items():
        c0, r0 = (i - i_min) * half_px, (j_max - j) * half_px
        tile = mosaic[r0:r0 + tile_size, c0:c0 + tile_size]
        writer.atomic_write_bytes(sat_dir / name, writer.encode_png(tile))


def _check_config(root: Path, config: dict, file_name: str = CONFIG_FILE) -> None:
    path = root / file_name
    if path.is_file():
        try:
            existing = json.loads(path.read_text())
        except ValueError as error:
            raise DataError(f"{path}: unreadable dataset settings ({error}); delete it or use another --out") from error
        differs = {k: (existing.get(k), v) for k, v in config.items() if existing.get(k) != v}
        if differs:
            raise DataError(f"{path}: this folder was generated with other settings {differs} (existing, requested); "
                            "use another --out folder or the same settings to resume")
    else:
        writer.write_json(path, config)


def plan_tasks(root, panos_per_city, seed, pano_size, tier, cities, tile_size, styles) -> list[WorldTask]:
    tasks = []
    for name in cities:
        remaining, world_index = panos_per_city, 0
        while remaining > 0:
            count = min(PANOS_PER_WORLD, remaining)
            tasks.append(WorldTask(str(root), name, world_index, count, seed, tier, tuple(pano_size), tile_size,
                                   tuple(styles)))
            remaining -= count
            world_index += 1
    return tasks


def _worker_init():
    cv2.setNumThreads(1)

"""A tiny VIGOR-layout root written by hand: two cities, 64-px tiles on a half-tile grid, 64x32 panoramas.

The GPS in the names is computed here from Web-Mercator at zoom 20 with its own few lines of maths (not the
package's), so the loader's geometry is checked against an independent construction.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EARTH_RADIUS_M = 6378137.0
MERCATOR_M_PER_PX_Z20 = 2.0 * math.pi * EARTH_RADIUS_M / 256.0 / 2.0**20
CITY_ORIGINS = {"NewYork": (40.7128, -74.0060), "Chicago": (41.8781, -87.6298)}
TILE_PX = 64
PANO_SIZE = (64, 32)  # W, H


def merc_px_to_latlon(x_px: float, y_px: float) -> tuple[float, float]:
    """Global zoom-20 Web-Mercator pixel (x east, y south) to (lat, lon)."""
    mx = x_px * MERCATOR_M_PER_PX_Z20 - math.pi * EARTH_RADIUS_M
    my = math.pi * EARTH_RADIUS_M - y_px * MERCATOR_M_PER_PX_Z20
    return math.degrees(2.0 * math.atan(math.exp(my / EARTH_RADIUS_M)) - math.pi / 2.0), math.degrees(mx / EARTH_RADIUS_M)


def latlon_to_merc_px(lat: float, lon: float) -> tuple[float, float]:
    mx = math.radians(lon) * EARTH_RADIUS_M
    my = math.log(math.tan(math.pi / 4.0 + math.radians(lat) / 2.0)) * EARTH_RADIUS_M
    return (mx + math.pi * EARTH_RADIUS_M) / MERCATOR_M_PER_PX_Z20, (math.pi * EARTH_RADIUS_M - my) / MERCATOR_M_PER_PX_Z20


@dataclass
class Camera:
    city: str
    pano_name: str
    lat: float
    lon: float
    sat_names: list[str]
    deltas: list[tuple[float, float]]  # (delta_row, delta_col) at 640 px per tile, positive first


@dataclass
class FakeVigor:
    root: Path
    cameras: dict[str, Camera] = field(default_factory=dict)  # pano name -> camera
    tiles: dict[str, tuple[float, float]] = field(default_factory=dict)  # tile name -> centre (lat, lon)
    meters_per_pixel: dict[str, float] = field(default_factory=dict)  # city -> m/px at 640


def _label_line(camera: Camera) -> str:
    parts = [camera.pano_name]
    for name, (delta_row, delta_col) in zip(camera.sat_names, camera.deltas):
        parts += [name, f"{delta_row:.6f}", f"{delta_col:.6f}"]
    return " ".join(parts)


def write_fake_vigor(root: Path, panos_per_city: int = 6, seed: int = 0) -> FakeVigor:
    """Write the tiny root: per city a 3x3 grid of tiles 320 px (at 640) apart and cameras inside it."""
    rng = np.random.default_rng(seed)
    fake = FakeVigor(root)
    for city_number, (city, (lat0, lon0)) in enumerate(CITY_ORIGINS.items()):
        (root / city / "panorama").mkdir(parents=True)
        (root / city / "satellite").mkdir(parents=True)
        split_dir = root / "splits__corrected" / city
        split_dir.mkdir(parents=True)
        x0, y0 = latlon_to_merc_px(lat0, lon0)
        centres = {}
        for i in range(3):
            for j in range(3):
                lat, lon = merc_px_to_latlon(x0 + 320 * j, y0 + 320 * i)
                name = f"satellite_{lat:.12f}_{lon:.12f}.png"
                centres[(i, j)] = name
                fake.tiles[name] = (lat, lon)
                colour = rng.integers(0, 255, size=(TILE_PX, TILE_PX, 3), dtype=np.uint8)
                Image.fromarray(colour).save(root / city / "satellite" / name)
        fake.meters_per_pixel[city] = MERCATOR_M_PER_PX_Z20 * math.cos(math.radians(lat0))
        if city == "NewYork":
            (root / city / "metadata.json").write_text(json.dumps({"meters_per_pixel": fake.meters_per_pixel[city]}))
        lines = []
        for k in range(panos_per_city):
            dx, dy = rng.uniform(5, 635, size=2)
            cx, cy = x0 + dx, y0 + dy
            lat, lon = merc_px_to_latlon(cx, cy)
            pano_name = f"x-{city_number}_Ab-{k}_q,{lat:.9f},{lon:.9f},.jpg"
            block_i, block_j = int(dy // 320), int(dx // 320)
            positive = (int(round(dy / 320)), int(round(dx / 320)))
            covering = [(block_i + a, block_j + b) for a in (0, 1) for b in (0, 1)]
            covering.sort(key=lambda ij: ij != positive)
            deltas = [(cy - (y0 + 320 * i), (x0 + 320 * j) - cx) for i, j in covering]
            camera = Camera(city, pano_name, float(f"{lat:.9f}"), float(f"{lon:.9f}"), [centres[ij] for ij in covering], deltas)
            fake.cameras[pano_name] = camera
            lines.append(_label_line(camera))
            pano = rng.integers(0, 255, size=(PANO_SIZE[1], PANO_SIZE[0], 3), dtype=np.uint8)
            Image.fromarray(pano).save(root / city / "panorama" / pano_name, quality=90)
        # the last record of every file has no trailing newline, as in some VIGOR files
        (split_dir / "pano_label_balanced__corrected.txt").write_text("\n".join(lines))
        (split_dir / "same_area_balanced_train__corrected.txt").write_text("\n".join(lines[:4]) + "\n")
        (split_dir / "same_area_balanced_test__corrected.txt").write_text("\n".join(lines[4:]))
        (split_dir / "satellite_list.txt").write_text("\n".join(sorted(centres.values())))
    first = next(iter(fake.cameras.values()))
    (root / first.city / "panorama" / (first.pano_name[: -len(".jpg")] + ".json")).write_text(
        json.dumps({"camera_height_m": 2.4, "heading_deg": 0.0})
    )
    return fake


@pytest.fixture
def fake_vigor(tmp_path) -> FakeVigor:
    return write_fake_vigor(tmp_path / "vigor")


@pytest.fixture
def make_fake_vigor():
    """The writer itself, for tests that build a root and then break it."""
    return write_fake_vigor

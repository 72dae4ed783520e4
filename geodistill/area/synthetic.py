"""A synthetic test area: one city world as a UTM GeoTIFF orthophoto plus geotagged panoramas with noisy GPS.

``generate_area(out_dir, ...)`` writes::

    <out>/orthophoto.tif            the world's aerial view, reprojected into the origin's UTM zone (RGB GeoTIFF)
    <out>/panoramas/<name>.jpg      2:1 panoramas; EXIF GPS = the true position moved 5-15 m in a random direction
    <out>/ground_truth.csv          name, true lat/lon and heading, prior lat/lon and the prior's error in metres
    <out>/synthetic_area.json       the settings (seed, tier, origin, CRS, sizes, generator version)

The world is the synthetic city of ``docs/synthetic-world.md`` (its aerial renderer and panorama renderer, at
the chosen tier), generated large enough that the orthophoto square lies inside it whatever its street angle.
Its local east/north metres are placed at ``origin`` through :class:`~geodistill.area.local_frame.LocalFrame`
and the orthophoto is reprojected into UTM by :mod:`geodistill.area.utm_orthophoto`.
Cameras stand at free ground spots (mostly on roads) at least ``camera_margin_m`` inside the orthophoto, so a
prior 15 m off still has a model-sized tile around it. Panoramas face north at their centre column by default
(the shipped models' setting); ``heading="random"`` turns each camera to a uniform heading and records it in
the panorama's GPano XMP tags. Everything is drawn from seeds derived from ``seed``: the same settings give the
same files, and a rerun keeps the panoramas already written.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from geodistill.area.exif import save_jpeg_with_gps
from geodistill.area.local_frame import LocalFrame
from geodistill.area.utm_orthophoto import (
    convergence_deg, ground_distance_m, render_side_m, utm_crs, write_utm_orthophoto,
)
from geodistill.data.synthetic.environment import get_tier
from geodistill.data.synthetic.generate import _check_config
from geodistill.data.synthetic.scene import (
    derive_seed, draw_aerial_view, draw_ground_view, draw_hidden, place_cameras, render_ground, render_mosaic,
)
from geodistill.data.synthetic.world import GENERATOR_VERSION, STYLES, generate_world
from geodistill.data.synthetic.writer import atomic_write_text

logger = logging.getLogger("geodistill.area.synthetic")

ORTHOPHOTO_FILE = "orthophoto.tif"
PANORAMA_DIR = "panoramas"
TRUTH_FILE = "ground_truth.csv"
CONFIG_FILE = "synthetic_area.json"
DEFAULT_ORIGIN = (41.31, -72.60)  # UTM zone 18N, 2.4 deg east of its central meridian: 1.6 deg of grid convergence
WORLD_APRON_M = 30.0
HEADINGS = ("north", "random")
TRUTH_COLUMNS = ("name", "true_lat", "true_lon", "true_heading_deg", "prior_lat", "prior_lon", "prior_error_m",
                 "camera_height_m")


def _validate(panos, pano_size, extent_m, meters_per_pixel, camera_margin_m, gps_error_m, heading, style):
    width, height = pano_size
    if int(panos) < 1:
        raise ValueError(f"panos must be at least 1, got {panos}")
    if width != 2 * height or height < 16:
        raise ValueError(f"pano_size must be a 2:1 (W, H) with W = 2 H and H >= 16, got {pano_size}")
    if not 0.05 <= meters_per_pixel <= 2.0:
        raise ValueError(f"meters_per_pixel must be in [0.05, 2] m, got {meters_per_pixel}")
    low, high = gps_error_m
    if not 0 <= low <= high:
        raise ValueError(f"gps_error_m must be (low, high) with 0 <= low <= high, got {gps_error_m}")
    if extent_m / 2 - camera_margin_m < 10.0:
        raise ValueError(f"extent_m {extent_m} leaves no room for cameras {camera_margin_m} m inside the edge; "
                         f"use extent_m >= {2 * (camera_margin_m + 10):g}")
    if heading not in HEADINGS:
        raise ValueError(f"heading must be one of {HEADINGS}, got {heading!r}")
    if style is not None and style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")


def generate_area(out_dir, panos: int = 60, seed: int = 0, tier: str = "hard", pano_size=(2048, 1024),
                  extent_m: float = 400.0, meters_per_pixel: float = 0.25, origin=DEFAULT_ORIGIN,
                  camera_margin_m: float = 90.0, gps_error_m=(5.0, 15.0), heading: str = "north",
                  style: str | None = None, progress: bool = True) -> dict:
    """Generate (or finish) a synthetic area under ``out_dir``; see the module docstring for the files.

    Args:
        out_dir: output folder.
        panos: number of panoramas.
        seed: area seed; same seed and settings, same files.
        tier: "easy" | "medium" | "hard" (``docs/synthetic-world.md`` §5).
        pano_size: (W, H) of the panoramas, W = 2 H.
        extent_m: side of the square orthophoto, metres.
        meters_per_pixel: orthophoto resolution (UTM metres per pixel).
        origin: (lat, lon) of the world centre (the orthophoto centre).
        camera_margin_m: cameras stand at least this far inside the orthophoto's edges.
        gps_error_m: (low, high) of the uniform GPS error distance; its direction is uniform.
        heading: "north" (centre column faces north, no heading tag) or "random" (uniform, GPano heading tag).
        style: world style (downtown, midrise, suburb); None draws one from the seed.
        progress: show a progress bar.

    Returns:
        Summary: root, panoramas, rendered, CRS, convergence, orthophoto size and the prior errors' range.
    """
    _validate(panos, pano_size, extent_m, meters_per_pixel, camera_margin_m, gps_error_m, heading, style)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    frame = LocalFrame(float(origin[0]), float(origin[1]))
    style = style or STYLES[int(np.random.default_rng(derive_seed(seed, 7)).integers(len(STYLES)))]
    settings = {"generator_version": GENERATOR_VERSION, "seed": int(seed), "tier": tier,
                "pano_size": [int(pano_size[0]), int(pano_size[1])], "extent_m": float(extent_m),
                "meters_per_pixel": float(meters_per_pixel), "origin": [frame.lat, frame.lon],
                "camera_margin_m": float(camera_margin_m), "gps_error_m": [float(x) for x in gps_error_m],
                "heading": heading, "style": style}
    _check_config(root, settings, CONFIG_FILE)
    tier_spec = get_tier(tier)
    render_m = render_side_m(extent_m, frame)
    world_seed = derive_seed(seed, 0)
    world = generate_world(world_seed, style, size_m=math.ceil(render_m * math.sqrt(2) + 2 * WORLD_APRON_M))
    hidden_aerial, hidden_ground = draw_hidden(world, np.random.default_rng(derive_seed(seed, 1)), tier_spec)
    aerial = draw_aerial_view(world, tier_spec, derive_seed(seed, 2), hidden_aerial)
    ortho_path = root / ORTHOPHOTO_FILE
    ortho = None
    if not ortho_path.is_file():
        side_px = 2 * math.ceil(render_m / meters_per_pixel / 2)
        image = render_mosaic(world, aerial, (0.0, 0.0), side_px, meters_per_pixel)
        ortho = write_utm_orthophoto(ortho_path, image, frame, (0.0, 0.0), meters_per_pixel, extent_m)
    spots = place_cameras(world, np.random.default_rng(derive_seed(seed, 3)), int(panos),
                          extent_m / 2 - camera_margin_m)
    rows, rendered = [], 0
    bar = _progress(len(spots), progress)
    for index, (east, north) in enumerate(spots):
        row, fresh = _panorama(root, world, aerial, hidden_ground, tier_spec, frame, seed, index, east, north,
                               pano_size, gps_error_m, heading)
        rows.append(row)
        rendered += fresh
        bar.update(1)
    bar.close()
    _write_truth(root / TRUTH_FILE, rows)
    errors = [row["prior_error_m"] for row in rows]
    summary = {"root": str(root), "panoramas": len(rows), "rendered": rendered, "style": style,
               "crs": f"EPSG:{utm_crs(frame.lat, frame.lon).to_epsg()}", "convergence_deg": convergence_deg(frame),
               "prior_error_m": [min(errors), max(errors)], "orthophoto": str(ortho_path)}
    if ortho is not None:
        summary["orthophoto_px"] = ortho["size_px"]
    return summary


def _panorama(root, world, aerial, hidden_ground, tier_spec, frame, seed, index, east, north, pano_size,
              gps_error_m, heading):
    """Render (or keep) panorama ``index``; returns its ground-truth row and 1 when it was rendered."""
    rng = np.random.default_rng(derive_seed(seed, 4, index))
    distance = float(rng.uniform(*gps_error_m))
    direction = float(rng.uniform(0.0, 2 * math.pi))
    heading_deg = float(rng.uniform(0.0, 360.0)) if heading == "random" else 0.0
    view = draw_ground_view(world, tier_spec, derive_seed(seed, 5, index), east, north, aerial.env)
    view = replace(view, camera=replace(view.camera, heading_deg=heading_deg))
    true_lat, true_lon = (float(v) for v in frame.to_latlon(east, north))
    prior_lat, prior_lon = (float(v) for v in frame.to_latlon(east + distance * math.sin(direction),
                                                               north + distance * math.cos(direction)))
    name = f"pano_{index:04d}.jpg"
    path = root / PANORAMA_DIR / name
    fresh = 0
    if not path.is_file():
        render = render_ground(world, view, tuple(pano_size), hidden_ground)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_jpeg_with_gps(Image.fromarray(render.image), path, prior_lat, prior_lon,
                           heading_deg=heading_deg if heading == "random" else None)
        fresh = 1
    row = {"name": name, "true_lat": true_lat, "true_lon": true_lon, "true_heading_deg": heading_deg,
           "prior_lat": prior_lat, "prior_lon": prior_lon,
           "prior_error_m": float(ground_distance_m(true_lat, true_lon, prior_lat, prior_lon)),
           "camera_height_m": view.camera.height_m}
    return row, fresh


def _write_truth(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TRUTH_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: (f"{value:.9f}" if key.endswith(("_lat", "_lon")) else
                               f"{value:.4f}" if isinstance(value, float) else value) for key, value in row.items()})
    atomic_write_text(path, buffer.getvalue())


def read_ground_truth(path) -> list[dict]:
    """Rows of a ``ground_truth.csv`` with numbers as floats."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [{key: (value if key == "name" else float(value)) for key, value in row.items()}
                for row in csv.DictReader(handle)]


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="pano", desc="synth-area", dynamic_ncols=True, disable=not enabled)

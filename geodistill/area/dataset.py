"""``make_dataset``: an orthophoto and geotagged panoramas in, a VIGOR-layout dataset out (labels = GPS).

Layout (one city, ``city``; see ``docs/synthetic-world.md`` §9 and ``anchors.md`` §5)::

    <out>/area_dataset.json                          labels = gps_priors, the inputs, settings, skipped panoramas
    <out>/<city>/metadata.json                       m/px of the 640-px tiles
    <out>/<city>/panorama/<id>,<lat>,<lon>,.jpg      the panoramas, north-aligned, GPS in the name
    <out>/<city>/satellite/satellite_<lat>_<lon>.png north-up tiles cut from the orthophoto
    <out>/splits__corrected/<city>/...               label lists and same-area train/test files

Tiles lie on a half-tile grid of the local frame of the orthophoto's centre (tile centres ``320·mpp`` metres
apart), so every panorama has exactly one positive tile (its GPS position in the tile's central quarter) and
three semi-positives, as in VIGOR. Label offsets come from the GPS positions, which are metres off: the
sidecar says so and ``evaluate`` warns. A panorama whose heading is known (GPano tag or CSV column) is turned
to face north at its centre column (whole columns); one without a heading is taken as north-aligned.
Panoramas without a usable GPS position, outside the orthophoto, unreadable or not 2:1 are skipped and listed
in the sidecar with the reason.
"""

from __future__ import annotations

import logging
import math
import shutil
import statistics
from pathlib import Path

import numpy as np
from tqdm import tqdm

from geodistill.area.orthophoto import open_orthophoto
from geodistill.area.priors import PanoPrior, read_priors
from geodistill.data.images import open_image
from geodistill.data.label_source import AREA_DATASET_FILE, GPS_PRIORS
from geodistill.data.synthetic.generate import _tiles_of_camera
from geodistill.data.synthetic.writer import (
    atomic_write_bytes, delta_from_pixel, encode_jpeg, encode_png, label_line, pano_file_name, tile_file_name,
    write_city_files, write_json,
)
from geodistill.errors import DataError
from geodistill.geometry.frames import VIGOR_METERS_PER_PIXEL, latlon_to_xy, xy_to_latlon

logger = logging.getLogger("geodistill.area.dataset")

# at 640 px: the mean of VIGOR's four cities (0.1109 m/px, a 71 m tile), the scale the localizers are trained at and
# the one ``refine`` takes for a checkpoint whose training data it cannot find
DEFAULT_METERS_PER_PIXEL = statistics.fmean(VIGOR_METERS_PER_PIXEL.values())
DEFAULT_CITY = "Area"


def _pano_id(path: Path) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in path.stem) or "pano"


def _write_panorama(prior: PanoPrior, target: Path) -> None:
    """Copy the panorama, or turn it to face north when its heading is known and not zero."""
    image = np.asarray(open_image(prior.path).convert("RGB"))
    height, width = image.shape[:2]
    if abs(width / height - 2.0) > 0.02:
        raise DataError(f"{prior.path}: {width}x{height} is not a 2:1 equirectangular panorama")
    shift = int(round(width * (prior.heading_deg or 0.0) / 360.0)) % width
    if shift == 0 and prior.path.suffix.lower() in (".jpg", ".jpeg"):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(prior.path, tmp)
        tmp.replace(target)
        return
    atomic_write_bytes(target, encode_jpeg(np.roll(image, shift, axis=1), quality=95))


def make_dataset(ortho_path, panos_dir, out_dir, gps_csv=None, city: str = DEFAULT_CITY,
                 meters_per_pixel: float | None = None, tile_px: int = 640, test_fraction: float = 0.2,
                 seed: int = 0, progress: bool = True) -> dict:
    """Write a VIGOR-layout dataset of an area; see the module docstring.

    Args:
        ortho_path: the orthophoto: a GeoTIFF in any CRS or a folder of XYZ tiles (``open_orthophoto``).
        panos_dir: folder of 2:1 panoramas.
        out_dir: dataset root to write (a folder that already holds another dataset is refused).
        gps_csv: ``name,lat,lon[,heading]`` file; default: EXIF GPS and GPano heading of each panorama.
        city: the dataset's city folder name.
        meters_per_pixel: resolution of a 640-px tile (its side is ``640 * meters_per_pixel`` metres); None:
            ``DEFAULT_METERS_PER_PIXEL``.
        tile_px: side of the tile files (labels stay in 640-px pixels).
        test_fraction: share of panoramas in the same-area test list (seeded).
        seed: seed of the train/test split.
        progress: show a progress bar.

    Returns:
        Summary: root, panoramas, tiles, skipped (name and reason) and the split sizes.
    """
    out, panos_dir = Path(out_dir), Path(panos_dir)
    meters_per_pixel = DEFAULT_METERS_PER_PIXEL if meters_per_pixel is None else float(meters_per_pixel)
    _check_inputs(Path(ortho_path), panos_dir, out, city, meters_per_pixel, tile_px, test_fraction)
    ortho = open_orthophoto(ortho_path)
    priors, not_read = read_priors(panos_dir, gps_csv)
    skipped = [{"name": entry.name, "reason": entry.reason} for entry in not_read]
    half_m = 320 * meters_per_pixel
    south, west, north, east = ortho.bounds_latlon()
    reference = np.array([(south + north) / 2, (west + east) / 2])
    records, tiles = [], {}
    for prior in tqdm(priors, unit="pano", desc="make-dataset", disable=not progress, dynamic_ncols=True):
        xy = latlon_to_xy(np.array([prior.lat, prior.lon]), reference)
        cover = _tiles_of_camera(float(xy[0]), float(xy[1]), half_m)
        centres = [tuple(float(c) for c in xy_to_latlon(np.array([i * half_m, j * half_m]), reference)) for i, j in cover]
        if not all(ortho.contains(lat, lon, margin_m=half_m) for lat, lon in centres):
            skipped.append({"name": prior.path.name,
                            "reason": f"too close to the orthophoto's edge or outside it (its four tiles need "
                                      f"{2 * half_m:.0f} m of orthophoto around the GPS position)"})
            continue
        pano_name = pano_file_name(_pano_id(prior.path), prior.lat, prior.lon)
        try:
            _write_panorama(prior, out / city / "panorama" / pano_name)
        except DataError as error:
            skipped.append({"name": prior.path.name, "reason": str(error).replace(f"{prior.path}: ", "")})
            continue
        entries = []
        for (i, j), centre in zip(cover, centres):
            name = tile_file_name(*centre)
            tiles[name] = centre
            east_m, north_m = (float(v) for v in latlon_to_xy(np.array([prior.lat, prior.lon]), np.array(centre)))
            entries.append((name, *delta_from_pixel(320 + east_m / meters_per_pixel, 320 - north_m / meters_per_pixel)))
        records.append({"pano_name": pano_name, "label_line": label_line(pano_name, entries)})
    if not records:
        raise DataError(f"{panos_dir}: no usable panorama ({_skip_summary(skipped) or 'no JPEG or PNG images found'})")
    _assign_splits(records, test_fraction, seed)
    satellite = out / city / "satellite"
    for name, (lat, lon) in tqdm(sorted(tiles.items()), unit="tile", desc="tiles", disable=not progress,
                                 dynamic_ncols=True):
        if not (satellite / name).is_file():
            tile = ortho.cut_tile(lat, lon, tile_px, meters_per_pixel * 640 / tile_px)
            atomic_write_bytes(satellite / name, encode_png(tile))
    metadata = {"city": city, "meters_per_pixel": meters_per_pixel, "tile_size_px": 640, "tile_file_px": tile_px,
                "source": "make-dataset", "labels": GPS_PRIORS}
    write_city_files(out, city, records, sorted(tiles), metadata)
    summary = {"root": str(out), "city": city, "panoramas": len(records), "tiles": len(tiles),
               "train": sum(r["same_area_split"] == "train" for r in records),
               "test": sum(r["same_area_split"] == "test" for r in records), "skipped": skipped}
    write_json(out / AREA_DATASET_FILE, {
        "labels": GPS_PRIORS,
        "note": "label offsets are the panoramas' GPS positions, not surveyed ground truth; errors measured on this "
                "dataset are errors against GPS",
        "orthophoto": str(Path(ortho_path).resolve()), "panoramas": str(panos_dir.resolve()),
        "gps_source": str(Path(gps_csv).resolve()) if gps_csv else "EXIF", "meters_per_pixel_640": meters_per_pixel,
        "tile_px": tile_px, "test_fraction": test_fraction, "seed": seed, **summary})
    return summary


def _skip_summary(skipped: list[dict]) -> str:
    """``3 x not in gps.csv (e.g. a.jpg); 1 x no GPS in EXIF (b.jpg)``."""
    groups: dict[str, list[str]] = {}
    for entry in skipped:
        groups.setdefault(entry["reason"], []).append(entry["name"])
    return "; ".join(f"{len(names)} x {reason} (e.g. {names[0]})" for reason, names in groups.items())


def _check_inputs(ortho_path: Path, panos_dir: Path, out: Path, city, meters_per_pixel, tile_px, test_fraction):
    if not ortho_path.exists():
        raise DataError(f"{ortho_path}: orthophoto not found (a GeoTIFF or a folder of XYZ tiles)")
    if not panos_dir.is_dir():
        raise DataError(f"{panos_dir}: panorama folder not found")
    if not city or any(c in city for c in "/\\ ,") or city.startswith("."):
        raise DataError(f"city name {city!r}: use letters, digits, '-' or '_'")
    if not 0.01 <= meters_per_pixel <= 2.0 or not math.isfinite(meters_per_pixel):
        raise DataError(f"meters per pixel of a 640-px tile must be in [0.01, 2], got {meters_per_pixel}")
    if tile_px < 32:
        raise DataError(f"tile side must be at least 32 pixels, got {tile_px}")
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test fraction must be in (0, 1), got {test_fraction}")
    if out.is_dir() and any(out.iterdir()) and not (out / AREA_DATASET_FILE).is_file():
        raise DataError(f"{out}: folder exists and holds something else than a make-dataset output; use another --out")


def _assign_splits(records: list[dict], test_fraction: float, seed: int) -> None:
    """Seeded same-area split by panorama: ``round(n * test_fraction)`` (at least one) in test, the rest in train."""
    order = np.random.default_rng(seed).permutation(len(records))
    n_test = min(max(1, int(round(len(records) * test_fraction))), len(records) - 1) if len(records) > 1 else 0
    test = {int(i) for i in order[:n_test]}
    for index, record in enumerate(records):
        record["same_area_split"] = "test" if index in test else "train"

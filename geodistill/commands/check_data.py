"""``python -m geodistill check-data DIR``: verify a VIGOR-layout dataset root and explain what is wrong.

With ``--visual OUT_DIR`` it also draws the visual ground-truth check of the first ``--limit`` panoramas:
``<pano>_gt.png`` (GT dot and heading arrow on the positive tile beside the panorama) and ``<pano>_bev.png``
(aerial crop at the GT beside the panorama's flat-world bird's-eye view, and their overlay).
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

from geodistill import settings

HELP = "verify a VIGOR-layout dataset root and explain what is wrong"
VISUAL_PANO_HEIGHT = 512  # panorama height drawn in the visual check (width = 2 x height)
VISUAL_BEV_EXTENT_M = 40.0  # side of the ground area of the BEV check, metres
LABEL_BASES = ("pano_label_balanced", "same_area_balanced_train", "same_area_balanced_test")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", metavar="DIR",
                        help="dataset root (holding <City>/panorama, <City>/satellite and splits__corrected/); "
                             "a relative name that does not exist here is looked up under GEODISTILL_DATA")
    parser.add_argument("--images", choices=("none", "quick", "full"), default="quick",
                        help="image check: none (names only), quick (headers and end markers, default) "
                             "or full (decode every image; slow on the real dataset)")
    parser.add_argument("--visual", metavar="OUT_DIR", default=None,
                        help="also write a visual ground-truth check of the first --limit panoramas to OUT_DIR: "
                             "<pano>_gt.png (dot and heading arrow on the tile) and <pano>_bev.png (BEV overlay)")
    parser.add_argument("--limit", type=int, default=8, help="panoramas drawn by --visual (default 8)")
    parser.add_argument("--city", default=None, help="draw only this city's panoramas with --visual")


def run(args: argparse.Namespace) -> int:
    """Print the report; exit 0 when the root is usable, 1 when it is not, 2 when there is no such folder."""
    from geodistill.data.checker import check_vigor_root

    from geodistill.errors import DataError

    root = settings.resolve_path(args.root, settings.data_dir())
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "not found"
        raise DataError(f"{args.root}: dataset root {what} (looked at {root}); pass the folder that holds "
                        "<City>/panorama, <City>/satellite and splits__corrected/")
    out_dir = _visual_dir(args) if args.visual is not None else None
    report = check_vigor_root(root, images=args.images)
    print(report.summary())
    if out_dir is not None:
        written = write_visual_checks(root, out_dir, args.limit, args.city)
        print(f"visual check: {written} panorama(s) drawn in {out_dir} (<pano>_gt.png, <pano>_bev.png)")
    return 0 if report.ok else 1


def _visual_dir(args: argparse.Namespace) -> Path:
    from geodistill.errors import DataError

    if args.limit < 1:
        raise DataError(f"--limit must be at least 1, got {args.limit}")
    out_dir = Path(args.visual).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--visual {args.visual}: is a file, not a folder; pass a folder to write the PNGs into")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"--visual {args.visual}: cannot create the folder: {error.strerror or error}") from error
    return out_dir


def visual_records(root: Path, limit: int, city: str | None = None) -> list:
    """The positive records of the first ``limit`` panoramas of ``root`` (cities in VIGOR's order, then others).

    Each city's panoramas come from ``pano_label_balanced`` (every panorama), else the same-area split files.
    A city whose split files do not parse is skipped with a message (the check's report says why).
    """
    from geodistill.data.vigor import CITIES, find_split_dir, find_split_file, read_label_file, records_from_lines
    from geodistill.errors import DataError

    split_dir = find_split_dir(root)
    present = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    cities = [c for c in CITIES if c in present] + [c for c in present if c not in CITIES]
    if city is not None:
        if city not in present:
            raise DataError(f"--city {city}: no such city in {split_dir} (found: {', '.join(present) or 'none'})")
        cities = [city]
    city_lines, seen = [], set()
    for name in cities:
        try:
            for base in LABEL_BASES:
                path = find_split_file(split_dir, name, base)
                for line in read_label_file(path) if path is not None else []:
                    if (name, line.pano_name) not in seen and len(city_lines) < limit:
                        seen.add((name, line.pano_name))
                        city_lines.append((name, line))
            if len(city_lines) >= limit:
                break
        except DataError as error:
            print(f"visual check: skipping {name}: {error}")
    return records_from_lines(root, city_lines, include_semi_positives=False)


def write_visual_checks(root: Path, out_dir: Path, limit: int, city: str | None = None) -> int:
    """Draw ``<pano>_gt.png`` and ``<pano>_bev.png`` for the first ``limit`` panoramas; returns how many."""
    from geodistill.data.synthetic.writer import atomic_write_bytes
    from geodistill.data.vigor import LABEL_TILE_PX, load_vigor_sample, parse_pano_name, read_sidecar
    from geodistill.errors import DataError
    from geodistill import keys
    from geodistill.viz.gt_check import bev_check_view, gt_tile_view

    written = 0
    for record in visual_records(root, limit, city):
        try:
            sample = load_vigor_sample(record, VISUAL_PANO_HEIGHT, LABEL_TILE_PX)
        except DataError as error:
            print(f"visual check: skipping {record.pano_name}: {error}")
            continue
        sidecar = read_sidecar(record.pano_path)
        heading = sidecar_heading(sidecar)
        uv = [float(c) for c in sample[keys.UV_GT]]
        mpp = float(sample[keys.METERS_PER_PIXEL])
        height_m = float(sample[keys.CAMERA_HEIGHT_M])
        pano_id = parse_pano_name(record.pano_name)[0]
        source = "sidecar" if sidecar is not None and "heading_deg" in sidecar else "north-aligned"
        caption = (f"{record.city} {pano_id}  |  tile {record.sat_name}  |  GT pixel ({uv[0]:.1f}, {uv[1]:.1f}) "
                   f"at {mpp:.4f} m/px  |  heading {heading:.1f}° ({source})")
        gt_image = gt_tile_view(sample[keys.SAT], sample[keys.PANO], uv, heading, caption)
        bev_image = bev_check_view(sample[keys.SAT], sample[keys.PANO], uv, mpp, height_m, heading,
                                   VISUAL_BEV_EXTENT_M, caption=f"{record.city} {pano_id}  |  "
                                   f"{VISUAL_BEV_EXTENT_M:.0f} m x {VISUAL_BEV_EXTENT_M:.0f} m around the GT camera")
        atomic_write_bytes(out_dir / f"{pano_id}_gt.png", _png_bytes(gt_image))
        atomic_write_bytes(out_dir / f"{pano_id}_bev.png", _png_bytes(bev_image))
        written += 1
    return written


def sidecar_heading(sidecar: dict | None) -> float:
    """The sidecar's ``heading_deg`` (degrees clockwise from north), else 0 for a north-aligned panorama."""
    value = sidecar.get("heading_deg") if sidecar else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value) % 360.0
    return 0.0


def _png_bytes(image) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()

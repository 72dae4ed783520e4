"""``python -m geodistill make-dataset --ortho AREA.tif --panos DIR --out DATASET``: an own area as a VIGOR-layout
dataset (tiles cut from the orthophoto on a half-tile grid, label offsets from the panoramas' GPS).

``check-data``, ``train`` (weak, distill), ``adapt`` and ``evaluate`` read the result as they read VIGOR. Its
labels are GPS positions, not ground truth: ``area_dataset.json`` at its root says so, and ``evaluate`` warns.
"""

from __future__ import annotations

import argparse

HELP = "turn an orthophoto and geotagged panoramas into a VIGOR-layout dataset (labels from GPS)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ortho", required=True, metavar="AREA.tif|XYZ_DIR",
                        help="orthophoto: a GeoTIFF in any CRS, or a folder of XYZ tiles {z}/{x}/{y}.png (deepest zoom)")
    parser.add_argument("--panos", required=True, metavar="DIR", help="folder of 2:1 panoramas (JPEG or PNG)")
    parser.add_argument("--gps", default=None, metavar="CSV",
                        help="name,lat,lon[,heading] per panorama (default: EXIF GPS and the GPano heading)")
    parser.add_argument("--out", required=True, metavar="DATASET",
                        help="dataset root to write (relative paths that do not exist resolve under GEODISTILL_DATA)")
    parser.add_argument("--city", default="Area", help="name of the dataset's city folder (default Area)")
    parser.add_argument("--meters-per-pixel", type=float, default=None, metavar="MPP",
                        help="resolution of a 640-px tile, which covers 640 x MPP metres (default 0.1109: the mean of "
                             "VIGOR's cities, the scale the localizers are trained at and refine's default)")
    parser.add_argument("--tile-px", type=int, default=640, metavar="PX",
                        help="side of the tile files in pixels (default 640 like VIGOR; labels stay in 640-px units)")
    parser.add_argument("--test-fraction", type=float, default=0.2, metavar="F",
                        help="share of panoramas in the same-area test list (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from geodistill.area.dataset import make_dataset
    from geodistill.commands.synth import output_folder

    root = output_folder(args.out, "the dataset")
    summary = make_dataset(args.ortho, args.panos, root, gps_csv=args.gps, city=args.city,
                           meters_per_pixel=args.meters_per_pixel, tile_px=args.tile_px,
                           test_fraction=args.test_fraction, seed=args.seed, progress=not args.no_progress)
    print(f"wrote {summary['root']}: {summary['panoramas']} panoramas ({summary['train']} train, {summary['test']} "
          f"test), {summary['tiles']} tiles; labels are GPS positions (area_dataset.json)")
    for entry in summary["skipped"]:
        print(f"skipped {entry['name']}: {entry['reason']}")
    print(f"check it with: python -m geodistill check-data {summary['root']}")
    return 0

"""``python -m geodistill synth-area --out DIR``: a synthetic test area (UTM GeoTIFF + geotagged panoramas)."""

from __future__ import annotations

import argparse
import json

from geodistill.commands.synth import STYLE_NAMES, _positive, _size, output_folder

HELP = "generate a synthetic test area: a UTM GeoTIFF orthophoto and panoramas with noisy EXIF GPS"


def _latlon(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(x) for x in text.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected LAT,LON such as 41.31,-72.60, got {text!r}") from error
    if not (-80.0 <= lat <= 84.0 and -180.0 <= lon <= 180.0):
        raise argparse.ArgumentTypeError(f"LAT,LON must lie in UTM's range (-80..84, -180..180), got {text!r}")
    return lat, lon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder to write (relative paths that do not exist resolve under GEODISTILL_DATA)")
    parser.add_argument("--panos", type=_positive, default=60, metavar="N", help="panoramas (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="area seed (default 0); same seed, same files")
    parser.add_argument("--tier", choices=("easy", "medium", "hard"), default="hard", help="difficulty (default hard)")
    parser.add_argument("--pano-size", type=_size, default=(2048, 1024), metavar="WxH",
                        help="panorama size, 2:1 (default 2048x1024)")
    parser.add_argument("--extent", type=float, default=400.0, metavar="M",
                        help="side of the square orthophoto in metres (default 400)")
    parser.add_argument("--meters-per-pixel", type=float, default=0.25, metavar="MPP",
                        help="orthophoto resolution in UTM metres per pixel (default 0.25)")
    parser.add_argument("--origin", type=_latlon, default=(41.31, -72.60), metavar="LAT,LON",
                        help="where the area's centre lies (default 41.31,-72.60: UTM zone 18N, 1.6 deg of grid "
                             "convergence)")
    parser.add_argument("--camera-margin", type=float, default=90.0, metavar="M",
                        help="cameras stand at least this far inside the orthophoto's edges (default 90 m: a 70 m tile around a prior 15 m off stays inside)")
    parser.add_argument("--gps-error", type=float, nargs=2, default=(5.0, 15.0), metavar=("LOW", "HIGH"),
                        help="EXIF GPS = true position moved a uniform LOW..HIGH metres in a random direction "
                             "(default 5 15)")
    parser.add_argument("--heading", choices=("north", "random"), default="north",
                        help="north: centre column faces north, no heading tag (default); random: uniform "
                             "headings, written as GPano PoseHeadingDegrees")
    parser.add_argument("--style", choices=STYLE_NAMES, default=None, help="world style (default: drawn from the seed)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from geodistill.area.synthetic import generate_area
    from geodistill.errors import DataError

    root = output_folder(args.out, "the area")
    try:
        summary = generate_area(root, panos=args.panos, seed=args.seed, tier=args.tier, pano_size=args.pano_size,
                                extent_m=args.extent, meters_per_pixel=args.meters_per_pixel, origin=args.origin,
                                camera_margin_m=args.camera_margin, gps_error_m=tuple(args.gps_error),
                                heading=args.heading, style=args.style, progress=not args.no_progress)
    except ValueError as error:
        raise DataError(str(error)) from error
    print(f"wrote {summary['root']}: {summary['panoramas']} panoramas ({summary['rendered']} rendered), "
          f"orthophoto in {summary['crs']} (grid convergence {summary['convergence_deg']:.2f} deg), "
          f"GPS off by {summary['prior_error_m'][0]:.1f}-{summary['prior_error_m'][1]:.1f} m")
    print(json.dumps(summary))
    return 0

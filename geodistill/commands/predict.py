"""``python -m geodistill predict``: localize a panorama (or a list of them) in north-up satellite tiles.

The tile's scale is ``--mpp`` (metres per pixel of the file as given) or ``--zoom`` with ``--sat-latlon``; with
``--sat-latlon`` the prediction is also given as latitude/longitude. Pixels are the tile file's own (``uv_file``,
continuous: pixel i covers [i, i+1)). A known camera position (``--gt-latlon`` or ``--gt-px``) adds the error in
metres. ``--pairs CSV`` reads one pair per row with columns ``pano,sat`` plus ``mpp`` or ``zoom``, optional
``lat,lon`` (tile centre) and ``gt_lat,gt_lon`` or ``gt_u,gt_v`` (true camera position, to report errors and a
summary: mean, median, recall@1/3/5 m); relative paths are taken from the CSV's folder.

Headings: a CCVPE checkpoint estimates its own (full circle) and reports a heading confidence; a G2SWeakly
checkpoint uses the orientation model. ``--heading-prior DEG --heading-range DEG`` keeps the estimate within the
prior's window; ``--no-orientation`` takes the panoramas as north-aligned.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from geodistill.shipped import DEFAULT_LOCALIZER, DEFAULT_ORIENTATION

HELP = "localize a panorama in a satellite tile"
PAIRS_COLUMNS = "pano,sat,mpp|zoom[,lat,lon][,gt_lat,gt_lon|gt_u,gt_v]"


@dataclass
class PairSpec:
    """One panorama/tile pair to localize, as read from the command line or a CSV row."""

    pano: Path
    sat: Path
    mpp: float | None
    zoom: float | None
    latlon: tuple[float, float] | None
    gt_latlon: tuple[float, float] | None = None
    gt_uv: tuple[float, float] | None = None
    origin: str = "command line"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help=f"checkpoint or run folder (default: checkpoints/{DEFAULT_LOCALIZER}, the shipped "
                             "default)")
    parser.add_argument("--role", choices=("student", "teacher"), default=None,
                        help="network of a distillation checkpoint (default: its deployed one)")
    parser.add_argument("--pano", default=None, metavar="P", help="equirectangular panorama (2:1)")
    parser.add_argument("--sat", default=None, metavar="S", help="north-up square satellite tile")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--mpp", type=float, default=None, metavar="M",
                       help="metres per pixel of the tile file (0.01-20)")
    scale.add_argument("--zoom", type=float, default=None, metavar="Z", help="Web-Mercator zoom (needs --sat-latlon)")
    parser.add_argument("--sat-latlon", default=None, metavar="LAT,LON",
                        help="tile-centre latitude,longitude, e.g. -33.8568,151.2153 (gives the prediction as "
                             "lat/lon)")
    parser.add_argument("--hfov", type=float, default=None, metavar="DEG",
                        help="load --pano as an ordinary photo with this horizontal field of view")
    known = parser.add_mutually_exclusive_group()
    known.add_argument("--gt-latlon", default=None, metavar="LAT,LON",
                       help="known camera latitude,longitude (needs --sat-latlon): reports the error in metres")
    known.add_argument("--gt-px", default=None, metavar="U,V",
                       help="known camera pixel (u, v) of the tile file: reports the error in metres")
    parser.add_argument("--pairs", default=None, metavar="CSV",
                        help=f"predict every row of a CSV (columns {PAIRS_COLUMNS}); with known positions it also "
                             "prints mean, median and recall@1/3/5 m")
    parser.add_argument("--orientation-checkpoint", default=None, metavar="PATH",
                        help=f"orientation estimator for unaligned panoramas (default: "
                             f"checkpoints/{DEFAULT_ORIENTATION}; a CCVPE checkpoint estimates its own heading and needs none)")
    parser.add_argument("--no-orientation", action="store_true",
                        help="treat the panoramas as north-aligned even when the heading could be estimated")
    parser.add_argument("--heading-prior", type=float, default=None, metavar="DEG",
                        help="prior heading of the panorama centre line, degrees clockwise from north: the estimate "
                             "stays within --heading-range of it (a CCVPE model searches only there)")
    parser.add_argument("--heading-range", type=float, default=None, metavar="DEG",
                        help="half range of --heading-prior in degrees, 0-180 (default 0: the prior is the heading)")
    parser.add_argument("--fov", type=float, default=None, metavar="DEG", help="use only this field of view")
    parser.add_argument("--fov-center", type=float, default=0.0, metavar="DEG",
                        help="centre of the --fov window, degrees clockwise from the panorama centre line")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def parse_latlon(text: str, what: str) -> tuple[float, float]:
    """``"41.87,-87.68"`` -> (41.87, -87.68); a clear error otherwise."""
    return _parse_pair(text, what, "LAT,LON (for example 41.8779,-87.6894)", "latitude and longitude")


def parse_pixel(text: str, what: str) -> tuple[float, float]:
    """``"320.5,310"`` -> (320.5, 310.0), a pixel (u, v) of the tile file; a clear error otherwise."""
    return _parse_pair(text, what, "U,V (pixels of the tile file, for example 320.5,310)", "u and v")


def _parse_pair(text: str, what: str, form: str, names: str) -> tuple[float, float]:
    from geodistill.cli import UserError

    parts = [part.strip() for part in str(text).split(",")]
    try:
        first, second = (float(part) for part in parts)
    except ValueError:
        raise UserError(f"{what} must look like {form}, got {text!r}") from None
    if not (math.isfinite(first) and math.isfinite(second)):
        raise UserError(f"{what}: {names} must be finite numbers, got {text!r}")
    return first, second


def _float_cell(row: dict, column: str, origin: str) -> float | None:
    from geodistill.errors import DataError

    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{origin}: column {column!r} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise DataError(f"{origin}: column {column!r} must be a finite number, got {text!r}")
    return value


def read_pairs_csv(path: str | Path) -> list[PairSpec]:
    """Read and check a pairs CSV (header :data:`PAIRS_COLUMNS`)."""
    from geodistill.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: pairs CSV not found")
    try:
        return _read_pairs_rows(path)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text CSV; save it as CSV (UTF-8) with the header "
                        f"{PAIRS_COLUMNS}") from None
    except csv.Error as error:
        raise DataError(f"{path}: not a readable CSV ({error})") from None


def _read_pairs_rows(path: Path) -> list[PairSpec]:
    from geodistill.errors import DataError

    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        missing = [c for c in ("pano", "sat") if c not in columns]
        if missing or not ({"mpp", "zoom"} & set(columns)):
            raise DataError(f"{path}: the header must name pano, sat and mpp or zoom (optional lat, lon, gt_lat, "
                            f"gt_lon or gt_u, gt_v); it has {', '.join(columns) or 'nothing'}")
        specs = []
        for line, row in enumerate(reader, start=2):
            origin = f"{path} line {line}"
            if not (row.get("pano") or "").strip() or not (row.get("sat") or "").strip():
                raise DataError(f"{origin}: empty pano or sat path")
            mpp, zoom = _float_cell(row, "mpp", origin), _float_cell(row, "zoom", origin)
            lat, lon = _float_cell(row, "lat", origin), _float_cell(row, "lon", origin)
            gt_lat, gt_lon = _float_cell(row, "gt_lat", origin), _float_cell(row, "gt_lon", origin)
            gt_u, gt_v = _float_cell(row, "gt_u", origin), _float_cell(row, "gt_v", origin)
            if (mpp is None) == (zoom is None):
                raise DataError(f"{origin}: give exactly one of mpp and zoom")
            if any((a is None) != (b is None) for a, b in ((lat, lon), (gt_lat, gt_lon), (gt_u, gt_v))):
                raise DataError(f"{origin}: give both lat and lon (and both gt_lat and gt_lon, both gt_u and gt_v), "
                                "or neither")
            if gt_lat is not None and gt_u is not None:
                raise DataError(f"{origin}: give the known position as gt_lat,gt_lon or as gt_u,gt_v, not both")
            specs.append(PairSpec(
                pano=(path.parent / row["pano"].strip()), sat=(path.parent / row["sat"].strip()), mpp=mpp, zoom=zoom,
                latlon=None if lat is None else (lat, lon), gt_latlon=None if gt_lat is None else (gt_lat, gt_lon),
                gt_uv=None if gt_u is None else (gt_u, gt_v), origin=origin))
    if not specs:
        raise DataError(f"{path}: no pairs (the CSV has a header but no rows)")
    return specs


def _specs_from_args(args) -> list[PairSpec]:
    from geodistill.cli import UserError
    from geodistill.data.pairs import check_meters_per_pixel

    if args.pairs:
        if (args.pano or args.sat or args.mpp is not None or args.zoom is not None or args.sat_latlon
                or args.gt_latlon or args.gt_px):
            raise UserError("--pairs reads pano, sat, scale and known positions from the CSV; do not combine it with "
                            "--pano/--sat/--mpp/--zoom/--sat-latlon/--gt-latlon/--gt-px")
        return read_pairs_csv(args.pairs)
    if not args.pano or not args.sat:
        raise UserError("give --pano P and --sat S (or --pairs CSV)")
    if args.mpp is None and args.zoom is None:
        raise UserError("give the tile's scale: --mpp M (metres per pixel of the tile file) or --zoom Z with "
                        "--sat-latlon LAT,LON")
    if args.mpp is not None:
        check_meters_per_pixel(args.mpp, "--mpp")
    latlon = parse_latlon(args.sat_latlon, "--sat-latlon") if args.sat_latlon else None
    if args.zoom is not None and latlon is None:
        raise UserError("--zoom needs --sat-latlon LAT,LON (the ground resolution depends on the latitude)")
    gt_latlon = parse_latlon(args.gt_latlon, "--gt-latlon") if args.gt_latlon else None
    if gt_latlon is not None and latlon is None:
        raise UserError("--gt-latlon needs --sat-latlon LAT,LON (the tile centre); or give the known position as "
                        "a pixel of the tile file with --gt-px U,V")
    gt_uv = parse_pixel(args.gt_px, "--gt-px") if args.gt_px else None
    return [PairSpec(Path(args.pano), Path(args.sat), args.mpp, args.zoom, latlon, gt_latlon, gt_uv)]


def _load_localizer(args):
    from geodistill.inference import Localizer, checkpoint_estimates_heading
    from geodistill.studio import default_checkpoint, shipped_checkpoint

    checkpoint = args.checkpoint or default_checkpoint()
    orientation = None
    if not args.no_orientation and (args.orientation_checkpoint or not checkpoint_estimates_heading(checkpoint)):
        orientation = args.orientation_checkpoint or shipped_checkpoint(DEFAULT_ORIENTATION)
    return Localizer.from_checkpoint(checkpoint, role=args.role, device=args.device,
                                     orientation_checkpoint=orientation)


def check_files_exist(specs: list[PairSpec]) -> None:
    """Refuse missing images before any model is loaded."""
    from geodistill.errors import DataError

    for spec in specs:
        for label, file in (("panorama", spec.pano), ("satellite tile", spec.sat)):
            if not file.is_file():
                where = "" if spec.origin == "command line" else f"{spec.origin}: "
                raise DataError(f"{where}{file}: {label} not found")


def _sample_for(spec: PairSpec, args, localizer) -> dict:
    from geodistill.data.pairs import GeoReference, load_panorama, load_satellite, make_sample
    from geodistill.errors import DataError

    try:
        georef = GeoReference(lat=None if spec.latlon is None else spec.latlon[0],
                              lon=None if spec.latlon is None else spec.latlon[1],
                              meters_per_pixel=spec.mpp, zoom=spec.zoom)
        pano = load_panorama(spec.pano, hfov_deg=args.hfov)
        sat = load_satellite(spec.sat)
        return make_sample(pano, sat, georef, pano_height=localizer.pano_height, sat_size=sat.image.shape[-1],
                           gt_latlon=spec.gt_latlon, gt_uv=spec.gt_uv)
    except DataError as error:
        if spec.origin == "command line":
            raise
        raise DataError(f"{spec.origin}: {error}") from error


def _describe(spec: PairSpec, prediction) -> str:
    side = prediction.prob_on_tile.shape[-1] if prediction.prob_on_tile is not None else "?"
    lines = [f"{spec.pano.name} in {spec.sat.name}: file pixel (u, v) = ({prediction.uv[0]:.1f}, "
             f"{prediction.uv[1]:.1f}) of the {side}x{side} tile; {prediction.xy_m[0]:+.2f} m east, "
             f"{prediction.xy_m[1]:+.2f} m north of its centre"]
    details = []
    if prediction.latlon is not None:
        details.append(f"lat/lon {prediction.latlon[0]:.7f}, {prediction.latlon[1]:.7f}")
    if prediction.heading_deg is not None:
        sureness = "" if prediction.heading_confidence is None else \
            f" (heading confidence {prediction.heading_confidence:.2f})"
        details.append(f"heading {prediction.heading_deg:.1f} deg{sureness}")
    if prediction.error_m is not None:
        details.append(f"error {prediction.error_m:.2f} m")
    lines.append("  " + "; ".join(details))
    lines.append(f"  confidence: {prediction.confidence_text}")
    return "\n".join(lines)


def prediction_document(spec: PairSpec, prediction) -> dict:
    """One prediction as JSON: the documented fields plus ``uv_file`` / ``uv_gt_file`` (pixels of the tile file)."""
    document = {"pano": str(spec.pano), "sat": str(spec.sat), **prediction.to_dict()}
    document["uv_file"] = [float(prediction.uv[0]), float(prediction.uv[1])]
    document["uv_gt_file"] = document["uv_gt"]
    return document


def describe_summary(summary: dict, pairs: int) -> str:
    recalls = ", ".join(f"R@{radius}m {100 * summary[f'recall_{radius}m']:.1f}%" for radius in (1, 3, 5))
    return (f"summary over {summary['n']} of {pairs} pairs with a known position: mean {summary['mean_m']:.2f} m, "
            f"median {summary['median_m']:.2f} m, {recalls}")


def check_heading_prior(args: argparse.Namespace) -> None:
    """Refuse a heading range without a prior, non-finite values, a range outside [0, 180] and a prior for
    panoramas declared north-aligned."""
    from geodistill.cli import UserError

    if args.heading_range is not None and args.heading_prior is None:
        raise UserError("--heading-range needs --heading-prior DEG")
    if args.heading_prior is not None and not math.isfinite(args.heading_prior):
        raise UserError(f"--heading-prior must be a finite number of degrees, got {args.heading_prior:g}")
    if args.heading_range is not None and not 0.0 <= args.heading_range <= 180.0:
        raise UserError(f"--heading-range must be between 0 and 180 degrees, got {args.heading_range:g}")
    if args.heading_prior is not None and args.no_orientation:
        raise UserError("--heading-prior and --no-orientation contradict each other: --no-orientation takes the "
                        "panoramas as north-aligned")


def run(args: argparse.Namespace) -> int:
    from geodistill.cli import UserError
    from geodistill.evaluation import summarize_errors

    if args.fov is not None and not 0.0 < args.fov <= 360.0:
        raise UserError(f"--fov must be in (0, 360] degrees, got {args.fov:g}")
    if not math.isfinite(args.fov_center):
        raise UserError(f"--fov-center must be a finite number of degrees, got {args.fov_center:g}")
    if args.fov is None and args.fov_center != 0.0:
        raise UserError("--fov-center needs --fov DEG")
    if args.hfov is not None and not 0.0 < args.hfov < 180.0:
        raise UserError(f"--hfov must be between 0 and 180 degrees, got {args.hfov:g}")
    check_heading_prior(args)
    specs = _specs_from_args(args)
    check_files_exist(specs)
    localizer = _load_localizer(args)
    results, errors = [], []
    for spec in specs:
        prediction = localizer.predict(_sample_for(spec, args, localizer), fov_deg=args.fov,
                                       fov_center_deg=args.fov_center,
                                       estimate_heading=False if args.no_orientation else None,
                                       heading_prior_deg=args.heading_prior, heading_range_deg=args.heading_range)
        if prediction.error_m is not None:
            errors.append(prediction.error_m)
        if args.json:
            results.append(prediction_document(spec, prediction))
        else:
            print(_describe(spec, prediction), flush=True)
    summary = summarize_errors(errors) if args.pairs and errors else None
    if args.json:
        document = {"checkpoint": localizer.source, "role": localizer.role,
                    "orientation_checkpoint": localizer.orientation_source or None,
                    "fov_deg": args.fov, "fov_center_deg": args.fov_center if args.fov is not None else None,
                    "heading_prior_deg": args.heading_prior,
                    "heading_range_deg": args.heading_range if args.heading_prior is not None else None}
        document["predictions" if args.pairs else "prediction"] = results if args.pairs else results[0]
        if args.pairs:
            document["summary"] = summary
        print(json.dumps(document, indent=2))
    elif summary is not None:
        print(describe_summary(summary, len(specs)))
    return 0

"""``python -m geodistill refine``: refine the GPS positions (and headings) of a folder of panoramas on an orthophoto.

Each panorama's prior comes from its EXIF GPS tags or ``--gps CSV`` (``name,lat,lon[,heading]``); its heading prior
from the CSV, GPano XMP or EXIF. A true-north-up tile of the orthophoto (a GeoTIFF in any CRS, or a folder of XYZ
tiles ``{z}/{x}/{y}.png``) is cut around the prior at the model's scale, and the localizer's heatmap is fused with a
Gaussian GPS prior of ``--prior-sigma`` metres. The output (``.geojson`` or ``.csv`` by the ``--out`` suffix) holds
per panorama the prior and refined lat/lon and orthophoto-CRS x/y, the shift, the heading, the calibrated
confidence, a 90 % uncertainty radius and the flags ``outside_orthophoto`` and ``low_confidence``; panoramas that
cannot be used are listed with the reason. A journal ``<out>.partial.jsonl`` makes the run resumable: rerun the
same command to continue; ``--restart`` starts over.
"""

from __future__ import annotations

import argparse
import sys

from geodistill.shipped import DEFAULT_LOCALIZER, DEFAULT_ORIENTATION

HELP = "refine the GPS positions of geotagged panoramas on an orthophoto (GeoTIFF or XYZ tiles)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ortho", required=True, metavar="AREA.tif|XYZ_DIR",
                        help="orthophoto: a GeoTIFF in any CRS, or a folder of XYZ tiles {z}/{x}/{y}.png")
    parser.add_argument("--zoom", type=int, default=None, help="zoom level of an XYZ folder (default: the deepest)")
    parser.add_argument("--panos", required=True, metavar="DIR", help="folder of 2:1 equirectangular panoramas")
    parser.add_argument("--gps", default=None, metavar="CSV",
                        help="prior positions name,lat,lon[,heading] (header optional; default: EXIF GPS tags)")
    parser.add_argument("--prior-sigma", type=float, default=10.0, metavar="M",
                        help="standard deviation of the GPS error in metres (default 10)")
    parser.add_argument("--out", required=True, metavar="refined.geojson|refined.csv",
                        help="output file; its suffix picks GeoJSON or CSV")
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help=f"localizer checkpoint or run folder (default: checkpoints/{DEFAULT_LOCALIZER})")
    parser.add_argument("--role", choices=("student", "teacher"), default=None,
                        help="network of a distillation checkpoint (default: its deployed one)")
    parser.add_argument("--orientation-checkpoint", default=None, metavar="PATH",
                        help=f"orientation estimator (default: checkpoints/{DEFAULT_ORIENTATION}; a CCVPE checkpoint "
                             "estimates its own heading)")
    parser.add_argument("--no-orientation", action="store_true",
                        help="estimate no heading: panoramas are turned by their prior heading, else taken as "
                             "north-aligned")
    parser.add_argument("--batch-size", type=int, default=8, help="panoramas per forward pass (default 8)")
    parser.add_argument("--restart", action="store_true",
                        help="discard the journal of an earlier run with this --out and start over")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def load_localizer(checkpoint, role, orientation_checkpoint, no_orientation: bool, device: str):
    """The localizer ``predict`` would load for these options (default checkpoint and orientation model)."""
    from geodistill.inference import Localizer, checkpoint_estimates_heading
    from geodistill.studio import default_checkpoint, shipped_checkpoint

    checkpoint = checkpoint or default_checkpoint()
    orientation = None
    if not no_orientation and (orientation_checkpoint or not checkpoint_estimates_heading(checkpoint)):
        orientation = orientation_checkpoint or shipped_checkpoint(DEFAULT_ORIENTATION)
    return Localizer.from_checkpoint(checkpoint, role=role, device=device, orientation_checkpoint=orientation)


def run(args: argparse.Namespace) -> int:
    from geodistill.area.refine import refine_area
    from geodistill.cli import UserError

    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    localizer = load_localizer(args.checkpoint, args.role, args.orientation_checkpoint, args.no_orientation,
                               args.device)
    summary = refine_area(args.ortho, args.panos, args.out, localizer=localizer, gps_csv=args.gps,
                          prior_sigma_m=args.prior_sigma, batch_size=args.batch_size, restart=args.restart,
                          zoom=args.zoom, show_progress=not args.no_progress)
    for record in summary.records:
        if record["status"] != "refined":
            print(f"{record['status']}: {record['reason']}", file=sys.stderr)
    print(summary.message())
    return 0

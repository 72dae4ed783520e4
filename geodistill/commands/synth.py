"""``python -m geodistill synth --out DIR``: generate a synthetic city dataset in the VIGOR layout."""

from __future__ import annotations

import argparse
import json

from geodistill import settings

HELP = "generate a synthetic city dataset in the VIGOR layout"
CITY_NAMES = ("NewYork", "Seattle", "SanFrancisco", "Chicago")
STYLE_NAMES = ("downtown", "midrise", "suburb")


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(x) for x in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1024x512, got {text!r}") from error
    if width != 2 * height or height < 16:
        raise argparse.ArgumentTypeError(f"a panorama is 2:1 (WIDTH = 2 x HEIGHT, HEIGHT >= 16), got {text!r}")
    return width, height


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from error
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _tile_side(text: str) -> int:
    side = _positive(text)
    if side % 32:
        raise argparse.ArgumentTypeError(f"a tile side is a multiple of 32 pixels (640 like VIGOR), got {side}")
    return side


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="dataset root to write (relative paths that do not exist resolve under GEODISTILL_DATA)")
    parser.add_argument("--panos", type=_positive, default=16, metavar="N", help="panoramas per city (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0); same seed, same data")
    parser.add_argument("--pano-size", type=_size, default=(1024, 512), metavar="WxH",
                        help="panorama size, 2:1 (default 1024x512)")
    parser.add_argument("--tile-size", type=_tile_side, default=640, metavar="PX",
                        help="satellite tile side, a multiple of 32 (default 640 like VIGOR; labels stay in 640-px "
                             "pixels)")
    parser.add_argument("--workers", type=_positive, default=1, metavar="K", help="rendering processes (default 1)")
    parser.add_argument("--tier", choices=("easy", "medium", "hard"), default="hard", help="difficulty (default hard)")
    parser.add_argument("--cities", nargs="+", choices=CITY_NAMES, default=list(CITY_NAMES), metavar="CITY",
                        help=f"cities to generate (default all: {' '.join(CITY_NAMES)})")
    parser.add_argument("--styles", nargs="+", choices=STYLE_NAMES, default=list(STYLE_NAMES), metavar="STYLE",
                        help=f"allowed world styles (default all: {' '.join(STYLE_NAMES)})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def output_folder(out: str, what: str):
    """``--out`` as a path (relative names that do not exist go under GEODISTILL_DATA); a DataError when a file
    stands where the folder or one of its parents should be."""
    from geodistill.errors import DataError

    root = settings.resolve_path(out, settings.data_dir())
    blocking = next((folder for folder in (root, *root.parents) if folder.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise DataError(f"--out {root}: {blocking} is a file, not a folder; give a folder for {what}")
    return root


def run(args: argparse.Namespace) -> int:
    from geodistill.data.synthetic import generate_dataset

    from geodistill.errors import DataError

    root = output_folder(args.out, "the dataset")
    try:
        summary = generate_dataset(root, panos_per_city=args.panos, seed=args.seed, pano_size=args.pano_size,
                                   tier=args.tier, cities=args.cities, workers=args.workers, styles=args.styles,
                                   progress=not args.no_progress, tile_size=args.tile_size)
    except ValueError as error:
        raise DataError(str(error)) from error
    counts = ", ".join(f"{c}: {v['panoramas']} panoramas / {v['tiles']} tiles" for c, v in summary["cities"].items())
    print(f"wrote {summary['root']} ({summary['tier']} tier, seed {summary['seed']}): {counts}")
    print(f"rendered {summary['rendered']}, reused {summary['reused']}, {summary['seconds']:.1f} s")
    print(json.dumps({k: summary[k] for k in ("panoramas", "rendered", "reused", "pairs_per_second")}))
    return 0

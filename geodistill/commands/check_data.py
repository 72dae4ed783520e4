"""``python -m geodistill check-data DIR``: verify a VIGOR-layout dataset root and explain what is wrong."""

from __future__ import annotations

import argparse

from geodistill import settings

HELP = "verify a VIGOR-layout dataset root and explain what is wrong"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", metavar="DIR",
                        help="dataset root (holding <City>/panorama, <City>/satellite and splits__corrected/); "
                             "a relative name that does not exist here is looked up under GEODISTILL_DATA")
    parser.add_argument("--images", choices=("none", "quick", "full"), default="quick",
                        help="image check: none (names only), quick (headers and end markers, default) "
                             "or full (decode every image; slow on the real dataset)")


def run(args: argparse.Namespace) -> int:
    """Print the report; exit 0 when the root is usable, 1 when it is not, 2 when there is no such folder."""
    from geodistill.data.checker import check_vigor_root

    from geodistill.errors import DataError

    root = settings.resolve_path(args.root, settings.data_dir())
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "not found"
        raise DataError(f"{args.root}: dataset root {what} (looked at {root}); pass the folder that holds "
                        "<City>/panorama, <City>/satellite and splits__corrected/")
    report = check_vigor_root(root, images=args.images)
    print(report.summary())
    return 0 if report.ok else 1

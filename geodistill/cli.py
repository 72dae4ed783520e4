"""``python -m geodistill <subcommand>``: one entry point for data, training, evaluation and inference.

Each subcommand lives in ``geodistill/commands/<name>.py`` and exposes ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules import lazily, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from geodistill import __version__
from geodistill.config import ConfigError
from geodistill.errors import GeoDistillError

SUBCOMMANDS = {
    "synth": ("geodistill.commands.synth", "generate a synthetic city dataset in the VIGOR layout"),
    "check-data": ("geodistill.commands.check_data", "verify a VIGOR-layout dataset root and explain what is wrong"),
    "train": ("geodistill.commands.train", "train a weak baseline, GeoDistill or the orientation estimator"),
    "evaluate": ("geodistill.commands.evaluate", "evaluate a checkpoint on a dataset split"),
    "predict": ("geodistill.commands.predict", "localize a panorama in a satellite tile"),
    "bench": ("geodistill.commands.bench", "measure speed and memory and print a table"),
}


class UserError(GeoDistillError):
    """An error in the command line itself; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m geodistill",
        description="GeoDistill Studio: cross-view localization of a ground panorama in a satellite tile.",
    )
    parser.add_argument("--version", action="version", version=f"geodistill {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="<subcommand>")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            sub_parser.set_defaults(_missing=True)
            continue
        module.add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "_missing", False):
        print(f"error: the '{args.command}' subcommand is not available in this version", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except (GeoDistillError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

"""``python -m geodistill <subcommand>``: one entry point for data, training, evaluation and inference.

Each subcommand lives in ``geodistill/commands/<name>.py`` and exposes ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules import lazily, so ``--help`` is fast.

Logging: warnings by default, ``-v`` adds informational messages, ``-vv`` debug messages; the flag is accepted
before or after the subcommand. A value that starts with a minus sign and holds a comma (``--sat-latlon
-33.86,151.21``) is taken as the option's value, never as an option.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys

from geodistill import __version__
from geodistill.config import ConfigError
from geodistill.errors import GeoDistillError

SUBCOMMANDS = {
    "synth": ("geodistill.commands.synth", "generate a synthetic city dataset in the VIGOR layout"),
    "synth-area": ("geodistill.commands.synth_area",
                   "generate a synthetic test area: a UTM GeoTIFF orthophoto and panoramas with noisy EXIF GPS"),
    "make-dataset": ("geodistill.commands.make_dataset",
                     "turn an orthophoto and geotagged panoramas into a VIGOR-layout dataset (labels from GPS)"),
    "check-data": ("geodistill.commands.check_data", "verify a VIGOR-layout dataset root and explain what is wrong"),
    "train": ("geodistill.commands.train", "train a weak baseline, GeoDistill or the orientation estimator"),
    "adapt": ("geodistill.commands.adapt",
              "adapt a model to an own area by GeoDistill distillation on its unlabelled panoramas"),
    "evaluate": ("geodistill.commands.evaluate", "evaluate a checkpoint on a dataset split"),
    "predict": ("geodistill.commands.predict", "localize a panorama in a satellite tile"),
    "calibrate": ("geodistill.commands.calibrate", "fit or measure a checkpoint's confidence (chance within 5 m)"),
    "refine": ("geodistill.commands.refine",
               "refine the GPS positions of geotagged panoramas on an orthophoto (GeoTIFF or XYZ tiles)"),
    "bench": ("geodistill.commands.bench", "measure speed and memory and print a table"),
}


LOG_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)
VERBOSE_HELP = "-v: also informational messages, -vv: also debug messages (default: warnings and errors only)"
NEGATIVE_PAIR = re.compile(r"^-\d*\.?\d+(e-?\d+)?\s*,")


class UserError(GeoDistillError):
    """An error in the command line itself; printed without a traceback."""


def attach_negative_values(argv: list[str]) -> list[str]:
    """``["--sat-latlon", "-33.86,151.21"]`` -> ``["--sat-latlon=-33.86,151.21"]``.

    argparse takes a token that starts with ``-`` and is not a plain number for an option, so a southern latitude
    or western longitude pair after a long option would fail with "expected one argument". Such a token (a
    negative number followed by a comma) can never be an option, so it is attached to the option before it.
    """
    result: list[str] = []
    for token in argv:
        previous = result[-1] if result else ""
        if NEGATIVE_PAIR.match(token) and previous.startswith("--") and "=" not in previous and previous != "--":
            result[-1] = f"{previous}={token}"
        else:
            result.append(token)
    return result


def log_level(args: argparse.Namespace) -> int:
    """The logging level asked for by ``-v`` flags given before and after the subcommand."""
    count = getattr(args, "verbose", 0) + getattr(args, "verbose_sub", 0)
    return LOG_LEVELS[min(count, len(LOG_LEVELS) - 1)]


def configure_logging(level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger().setLevel(level)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m geodistill",
        description="GeoDistill Studio: cross-view localization of a ground panorama in a satellite tile.",
    )
    parser.add_argument("--version", action="version", version=f"geodistill {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="<subcommand>")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        sub_parser.add_argument("-v", "--verbose", dest="verbose_sub", action="count", default=0, help=VERBOSE_HELP)
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
    args = parser.parse_args(attach_negative_values(sys.argv[1:] if argv is None else list(argv)))
    configure_logging(log_level(args))
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

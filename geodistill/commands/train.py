"""``python -m geodistill train``: train a weak baseline, GeoDistill or the orientation estimator.

    python -m geodistill train --config training/configs/tiny.yaml [--run-dir DIR] [--resume] [--force] [key=value ...]

The recipe is layered over the defaults and the ``key=value`` overrides over the recipe
(``optim.lr=3e-4 train.epochs=2``). The run goes to ``--run-dir`` or ``$GEODISTILL_RUNS/<name>``. Under
``torchrun --nproc_per_node N -m geodistill train ...`` the same command trains on N processes.
Exit status: 0 when training finished, 130 when it was interrupted (``interrupted/`` saved), 2 on a
user error. The trainer's own progress messages (one line per epoch with its validation metrics, resuming,
dataset generation) show at the default verbosity; ``-v`` adds the other informational messages.
"""

from __future__ import annotations

import argparse
import logging

HELP = "train a weak baseline, GeoDistill or the orientation estimator"

TRAINER_LOGGER = "geodistill.engine"  # epoch lines, resuming, data generation: the command's progress output

logger = logging.getLogger("geodistill.commands.train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH",
                        help="YAML recipe (training/configs/*.yaml); with --resume it defaults to the run's config.yaml")
    parser.add_argument("--run-dir", metavar="DIR", help="run folder (default: $GEODISTILL_RUNS/<config name>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in the run folder from the newer of interrupted/ and last/")
    parser.add_argument("--force", action="store_true",
                        help="resume even though the config changed, or start over in a folder that holds a run")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. optim.lr=3e-4 train.epochs=2 data.area=same")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from geodistill.cli import log_level
    from geodistill.config import load_config
    from geodistill.engine.loop import train
    from geodistill.errors import GeoDistillError

    if log_level(args) > logging.INFO:
        logging.getLogger(TRAINER_LOGGER).setLevel(logging.INFO)
    config_path = args.config
    if config_path is None:
        if not (args.resume and args.run_dir):
            raise GeoDistillError("--config PATH is required (or --resume --run-dir DIR to continue a run with its config)")
        config_path = Path(args.run_dir) / "config.yaml"
    config = load_config(config_path, args.overrides)
    result = train(config, run_dir=args.run_dir, resume=args.resume, force=args.force)
    if result.status == "interrupted":
        print(f"interrupted at epoch {result.epoch + 1}, step {result.step}; saved {result.run_dir / 'interrupted'}")
        print(f"continue with: python -m geodistill train --run-dir {result.run_dir} --resume")
        return 130
    print(f"done: {result.step} steps, {result.epoch} epochs in {result.run_dir}")
    print(best_epoch_line(config, result))
    return 0


def best_epoch_line(config, result) -> str:
    """Which epoch became ``best/`` and why, in the unit of the task's selection metric."""
    epoch = None if result.best_epoch is None else result.best_epoch + 1
    if config.train.select_by == "last":
        return f"best epoch {epoch} (the last epoch: train.select_by=last, no ground truth used)"
    what, unit = ("mean heading error", "deg") if config.train.task == "orientation" else ("mean error", "m")
    value = f"{result.best_metric:.3f} {unit}" if result.best_metric is not None else "n/a"
    return f"best epoch {epoch} (validation {what} {value}; selected on the GT-labelled validation split)"

"""``python -m geodistill adapt --checkpoint MODEL --data DATASET``: GeoDistill on an own area, without labels.

A thin layer over ``train`` (the config: ``geodistill/engine/adapt.py``): the run's config is the checkpoint's own
(same network, input sizes and distillation settings) with ``train.task=distill``, teacher and student initialised
from the checkpoint (``distill.init_checkpoint``), and ``data.root`` the area's dataset written by ``make-dataset``
(same-area lists).
The distillation loss compares the teacher's heatmap on the full panorama with the student's on a FoV-masked view
of it: no position label enters training.

The defaults are the recipe measured in docs/own-area.md (``geodistill.config.ADAPT_*``): 12 passes at batch 4 and
a peak learning rate of 2e-4, the student seeing 240-360 deg of each panorama (``refine`` sees full ones), the
teacher's heatmap sharpened (temperature 0.04 against the student's 0.06), and the last epoch kept as ``best/``. Selection without ground truth: ``--select gps`` keeps instead the epoch whose deployed
network has the lowest mean distance to the GPS positions of a held-back part of the area's panoramas
(``data.val_fraction`` of the training list, seeded; those panoramas are not trained on, and the distance is
logged every epoch either way). GPS is metres off, but equally for every epoch; on the measured areas that distance
hardly moved between epochs, so it chose noisily. The run lives under the runs root like any other (``config.yaml``, ``events.jsonl``,
``best/``, ``last/``), so the app's job manager lists and follows it, and ``refine --checkpoint RUN/best`` takes
its checkpoint, with the source checkpoint's confidence calibration carried over (an area has no labels to refit
it on). Exit status as ``train``: 0 done, 130 interrupted (``--resume`` continues), 2 on a user error.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from geodistill.config import ADAPT
from geodistill.shipped import DEFAULT_LOCALIZER

HELP = "adapt a model to an own area by GeoDistill distillation on its unlabelled panoramas"

logger = logging.getLogger("geodistill.commands.adapt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=DEFAULT_LOCALIZER, metavar="MODEL",
                        help="model to adapt: checkpoint folder, run folder (its best/), or a shipped name (default "
                             f"{DEFAULT_LOCALIZER}, the default model)")
    parser.add_argument("--data", required=True, metavar="DATASET",
                        help="the area's dataset from make-dataset (relative: under GEODISTILL_DATA)")
    parser.add_argument("--run-dir", metavar="DIR", help="run folder (default: $GEODISTILL_RUNS/adapt-<dataset name>)")
    parser.add_argument("--epochs", type=int, default=ADAPT.epochs, metavar="N",
                        help=f"passes over the area (default {ADAPT.epochs})")
    parser.add_argument("--steps-per-epoch", type=int, default=0, metavar="K",
                        help="cap on steps per epoch (default 0: all of the area's training panoramas)")
    parser.add_argument("--batch-size", type=int, default=ADAPT.batch_size, metavar="B",
                        help=f"panoramas per step (default {ADAPT.batch_size})")
    parser.add_argument("--lr", type=float, default=ADAPT.lr,
                        help=f"peak learning rate (default {ADAPT.lr:g}, cosine to a tenth)")
    parser.add_argument("--select", choices=("gps", "last"), default=ADAPT.select,
                        help="best/ = the last epoch, or the epoch closest to the held-back panoramas' GPS (default "
                             f"{ADAPT.select})")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="further config overrides, e.g. distill.fov.min_deg=180 (the student's FoV range: default "
                             f"{ADAPT.fov_deg[0]:g}-{ADAPT.fov_deg[1]:g} deg), distill.tau_teacher=0.06 (default "
                             f"{ADAPT.tau_teacher:g}), data.val_fraction=0.25")


def run(args: argparse.Namespace) -> int:
    from geodistill import settings
    from geodistill.cli import UserError, log_level
    from geodistill.commands.train import TRAINER_LOGGER
    from geodistill.config import load_config
    from geodistill.engine.adapt import build_adapt_config, inherit_calibration
    from geodistill.engine.jobs import JobManager
    from geodistill.engine.loop import train
    from geodistill.errors import DataError

    if args.epochs < 1 or args.steps_per_epoch < 0 or args.batch_size < 1:
        raise UserError("--epochs and --batch-size must be at least 1, --steps-per-epoch at least 0")
    if log_level(args) > logging.INFO:
        logging.getLogger(TRAINER_LOGGER).setLevel(logging.INFO)
    data_root = settings.resolve_path(args.data, settings.data_dir())
    if data_root is None or not data_root.is_dir():
        raise DataError(f"{args.data}: dataset not found (looked at {data_root}); write one with "
                        "`python -m geodistill make-dataset`")
    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        run_dir = settings.runs_dir() / JobManager().unique_name(f"adapt-{data_root.name}")
    if args.resume:
        config = load_config(run_dir / "config.yaml", args.overrides)
    else:
        config = build_adapt_config(args.checkpoint, data_root, run_dir.name, args.epochs, args.steps_per_epoch,
                                    args.batch_size, args.lr, args.select, args.device, args.overrides)
    result = train(config, run_dir=run_dir, resume=args.resume)
    if result.status == "interrupted":
        print(f"interrupted at epoch {result.epoch + 1}, step {result.step}; saved {result.run_dir / 'interrupted'}")
        print(f"continue with: python -m geodistill adapt --checkpoint {args.checkpoint} --data {args.data} "
              f"--run-dir {result.run_dir} --resume")
        return 130
    source = config.distill.init_checkpoint
    if inherit_calibration(source, result.run_dir):
        print(f"confidence: the calibration of {source} (fitted before adaptation) is carried over")
    epoch = None if result.best_epoch is None else result.best_epoch + 1
    if config.train.select_by == "last":
        chosen = "the last epoch"
    else:
        value = f"{result.best_metric:.2f} m" if result.best_metric is not None else "n/a"
        chosen = f"mean distance {value} to the GPS of the held-back panoramas; no ground truth used"
    print(f"done: {result.step} steps, {result.epoch} epochs in {result.run_dir}; best epoch {epoch} ({chosen})")
    print(f"use it with: --checkpoint {result.run_dir / 'best'}")
    return 0

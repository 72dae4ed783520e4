"""``python -m geodistill evaluate``: localization errors of a checkpoint on a VIGOR-layout split.

Positives only; errors in metres; mean, median and recall@1/3/5 m overall and per city, printed with the setting
(area, split, FoV, orientation, checkpoint role). ``--checkpoint none`` evaluates the tile-centre baseline; without
``--checkpoint``, the shipped default model (``geodistill.shipped.DEFAULT_LOCALIZER``, as ``predict``).
``--per-sample`` writes one CSV row per query: positions as pixels of the tile file (``u_pred_file_px``,
``v_pred_file_px``, ``u_gt_file_px``, ``v_gt_file_px``; the file's side in ``tile_file_px``) and metres east/north
of the tile centre (``east_pred_m``...), besides ``u_pred, v_pred, u_gt, v_gt`` on the tile as fed to the model.
A dataset written by ``make-dataset`` has GPS positions for labels (``area_dataset.json``): evaluate warns that its
errors are measured against GPS and tags the setting ``labels=GPS``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from geodistill.shipped import DEFAULT_LOCALIZER, DEFAULT_ORIENTATION

HELP = "evaluate a checkpoint on a dataset split"
BASELINE_NAMES = ("none", "centre", "center", "tile-centre", "tile-center")

logger = logging.getLogger("geodistill.commands.evaluate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="checkpoint folder or run folder (its best/); 'none' = predict the tile centre "
                             f"(default: checkpoints/{DEFAULT_LOCALIZER}, the shipped default, as for predict)")
    parser.add_argument("--data", required=True, help="VIGOR-layout dataset root (relative: under GEODISTILL_DATA)")
    parser.add_argument("--area", choices=("same", "cross"), default=None,
                        help="same-area or cross-area split (default: the checkpoint's training area, else cross)")
    parser.add_argument("--split", choices=("test", "val", "train", "all"), default="test", help="split (default test)")
    parser.add_argument("--fov", type=float, default=None, metavar="DEG",
                        help="visible field of view per query, degrees (window centre seeded per query)")
    parser.add_argument("--role", choices=("student", "teacher"), default=None,
                        help="network of a distillation checkpoint (default: its deployed one)")
    parser.add_argument("--orientation", choices=("aligned", "45", "unknown"), default="aligned",
                        help="query headings: aligned, uniform +-45 deg, or unknown (0-360 deg)")
    parser.add_argument("--orientation-checkpoint", default=None, metavar="PATH",
                        help="orientation estimator for --orientation 45/unknown (default: "
                             f"checkpoints/{DEFAULT_ORIENTATION}); "
                             "a CCVPE checkpoint estimates its own heading and needs none")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate the first N queries only")
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="evaluate every K-th query only (a subset spread over the split; default 1 = all)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="B", help="queries per forward pass")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seed of the FoV windows and test headings")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the summary as JSON")
    parser.add_argument("--per-sample", default=None, metavar="FILE",
                        help="write one CSV row per query (positions in pixels of the tile file: *_file_px columns, "
                             "and metres: east_*_m, north_*_m)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def is_baseline(checkpoint: str) -> bool:
    return checkpoint.strip().lower() in BASELINE_NAMES


def default_orientation_checkpoint() -> Path | None:
    """``checkpoints/orientation`` when it holds a checkpoint."""
    from geodistill.studio import shipped_checkpoint

    return shipped_checkpoint(DEFAULT_ORIENTATION)


def _load_localizer(args):
    from geodistill.config import ExperimentConfig
    from geodistill.errors import CheckpointError
    from geodistill.inference import Localizer, TileCentreBaseline, checkpoint_estimates_heading
    from geodistill.studio import default_checkpoint

    checkpoint = args.checkpoint or str(default_checkpoint())
    if is_baseline(checkpoint):
        if args.role is not None:
            raise CheckpointError("--role applies to a distillation checkpoint, not to the tile-centre baseline")
        data = ExperimentConfig().data
        return TileCentreBaseline(data.pano_height, data.sat_size), "tile centre (no model)", None
    orientation_checkpoint = None
    if checkpoint_estimates_heading(checkpoint):
        if args.orientation_checkpoint:
            logger.info("%s estimates its own heading: the orientation checkpoint is not used", checkpoint)
    elif args.orientation != "aligned":
        orientation_checkpoint = args.orientation_checkpoint or default_orientation_checkpoint()
        if orientation_checkpoint is None:
            raise CheckpointError(f"--orientation {args.orientation} needs an orientation model: pass "
                                  f"--orientation-checkpoint PATH (none found at checkpoints/{DEFAULT_ORIENTATION})")
    elif args.orientation_checkpoint:
        logger.info("--orientation aligned: the orientation checkpoint is not used")
    localizer = Localizer.from_checkpoint(checkpoint, role=args.role, device=args.device,
                                          orientation_checkpoint=orientation_checkpoint)
    return localizer, localizer.source, localizer.config.data.area


def run(args: argparse.Namespace) -> int:
    from geodistill.cli import UserError
    from geodistill.data.label_source import gps_label_warning
    from geodistill.evaluation import check_orientation_support, evaluate_localizer

    if args.fov is not None and not 0.0 < args.fov <= 360.0:
        raise UserError(f"--fov must be in (0, 360] degrees, got {args.fov:g}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    if args.every < 1:
        raise UserError(f"--every must be at least 1, got {args.every}")
    for flag, target in (("--json", args.json), ("--per-sample", args.per_sample)):
        check_output_file(flag, target)
    localizer, source, trained_area = _load_localizer(args)
    check_orientation_support(localizer, args.orientation)
    area = args.area or trained_area or "cross"
    dataset, root = open_split(args.data, area, args.split, localizer)
    config = getattr(localizer, "config", None)
    total = len(range(0, len(dataset), args.every))
    total = total if args.limit is None else min(args.limit, total)
    setting = {"area": area, "split": args.split, "checkpoint": source, "data": str(root)}
    if config is not None:
        setting["selection"] = config.train.select_by
    gps_warning = gps_label_warning(root)
    if gps_warning:
        print(f"warning: {gps_warning}", file=sys.stderr)
        setting["labels"] = "GPS"
    with ProgressBar(total, not args.no_progress) as bar:
        result = evaluate_localizer(localizer, dataset, fov_deg=args.fov, orientation=args.orientation,
                                    seed=args.seed, limit=args.limit, every=args.every, batch_size=args.batch_size,
                                    progress=bar.update_to, setting=setting)
    print(result.format_table())
    if args.json:
        print(f"summary written to {result.write_json(args.json)}")
    if args.per_sample:
        print(f"per-query rows written to {result.write_csv(args.per_sample)}")
    return 0


def open_split(data: str, area: str, split: str, localizer):
    """(dataset, root) of a VIGOR-layout split at the localizer's input sizes, with the checkpoint's own
    train/validation split and camera height; a clear error when the root does not exist."""
    from geodistill import settings
    from geodistill.data.vigor import VigorDataset
    from geodistill.errors import DataError

    root = settings.resolve_path(data, settings.data_dir())
    if root is None or not root.is_dir():
        raise DataError(f"{data}: dataset root not found (looked at {root}); generate one with "
                        "`python -m geodistill synth` or point --data at a VIGOR-layout folder")
    config = getattr(localizer, "config", None)
    same_split = {} if config is None else {  # the checkpoint's own train/validation split and camera height
        "val_fraction": config.data.val_fraction, "split_seed": config.data.split_seed,
        "default_camera_height_m": config.model.camera_height_m}
    dataset = VigorDataset(root, area=area, split=split, pano_height=localizer.pano_height,
                           sat_size=localizer.sat_size, **same_split)
    return dataset, root


def check_output_file(flag: str, target: str | None) -> None:
    """Refuse an output path that cannot be written as a file before any query is evaluated."""
    from geodistill.cli import UserError

    if target is None:
        return
    path = Path(target).expanduser()
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder; give a file name (for example {path / 'results'}"
                        f"{'.json' if flag == '--json' else '.csv'})")
    blocking = next((parent for parent in path.parents if parent.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise UserError(f"{flag} {path}: {blocking} is a file, not a folder")


class ProgressBar:
    """tqdm on stderr, advanced with ``update_to(done, total)``."""

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="evaluating", unit="query", file=sys.stderr, disable=not enabled,
                        dynamic_ncols=True)

    def update_to(self, done: int, total: int) -> None:
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

"""``python -m geodistill calibrate``: fit (or measure) a checkpoint's confidence, P(error <= 5 m).

Fitting runs the checkpoint on a labelled split (default: its own validation split) at several visible FoVs, with
``--windows`` seeded window centres per query for each limited FoV, fits :func:`geodistill.calibration.fit_calibrator`
on the score-map features and the observed hits, and stores it in the checkpoint's ``config.json`` under
``calibration.<role>`` (the weights file is not touched). ``--measure`` instead compares the stored confidence with
the observed within-5 m rate on another split (default: test) in three equal-count bins.

    python -m geodistill calibrate --checkpoint checkpoints/geodistill_student --data shipped/nyse
    python -m geodistill calibrate --checkpoint checkpoints/geodistill_student --data shipped/sfch --area cross \\
        --measure --report docs/results/calibration/student_cross.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "fit or measure a checkpoint's calibrated confidence (chance within 5 m)"
DEFAULT_FOVS = (360.0, 270.0, 180.0, 120.0, 90.0)
MAX_BIN_GAP = 0.10  # the stated accuracy of the confidence: predicted vs observed, per bin
PLOT_BINS = 10      # finer equal-count bins kept in the report for the reliability plot


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="localizer checkpoint folder (or run folder: its best/)")
    parser.add_argument("--data", required=True, help="VIGOR-layout dataset root (relative: under GEODISTILL_DATA)")
    parser.add_argument("--area", choices=("same", "cross"), default=None,
                        help="same-area or cross-area split (default: the checkpoint's training area)")
    parser.add_argument("--split", choices=("val", "test", "train", "all"), default=None,
                        help="split (default: val to fit, test with --measure)")
    parser.add_argument("--role", choices=("student", "teacher"), default=None,
                        help="network of a distillation checkpoint (default: its deployed one)")
    parser.add_argument("--fov", type=float, nargs="+", default=None, metavar="DEG",
                        help=f"visible FoVs to query (default to fit: {' '.join(f'{f:g}' for f in DEFAULT_FOVS)}; "
                             "with --measure: 360 180 90)")
    parser.add_argument("--windows", type=int, default=1, metavar="N",
                        help="seeded window centres per query for each FoV below 360 (default 1)")
    parser.add_argument("--measure", action="store_true",
                        help="measure the stored confidence instead of fitting (nothing is written to the checkpoint)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the FoV windows (window k uses seed + k)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="use the first N queries only")
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="use every K-th query only (a subset spread over the split; default 1 = all)")
    parser.add_argument("--batch-size", type=int, default=16, metavar="B", help="queries per forward pass")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--report", default=None, metavar="FILE",
                        help="write a JSON report (the calibrator, three bins overall and per FoV, ten bins for a plot)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def collect_queries(localizer, dataset, fovs, windows: int, seed: int, limit: int | None, batch_size: int,
                    progress=None, every: int = 1) -> list[dict]:
    """One dict per (query, FoV, window): ``features``, ``error_m``, ``fov_deg``, ``index``, ``window``."""
    from geodistill.evaluation import evaluate_localizer

    queries = []
    for fov in fovs:
        for window in range(1 if fov >= 360.0 else windows):
            result = evaluate_localizer(localizer, dataset, fov_deg=fov, seed=seed + window, limit=limit,
                                        every=every, batch_size=batch_size, progress=progress)
            queries += [{"features": row["calibration_features"], "error_m": row["error_m"], "fov_deg": float(fov),
                         "index": row["index"], "window": window} for row in result.rows]
    return queries


def measure(calibrator, queries: list[dict]) -> dict:
    """Reliability of ``calibrator`` on ``queries``: three equal-count bins overall and per FoV."""
    from geodistill.calibration import UNRELIABLE_BELOW, reliability_bins

    confidences = calibrator.confidences([q["features"] for q in queries])
    hits = [q["error_m"] <= calibrator.radius_m for q in queries]
    per_fov = {}
    for fov in sorted({q["fov_deg"] for q in queries}, reverse=True):
        chosen = [i for i, q in enumerate(queries) if q["fov_deg"] == fov]
        if len(chosen) >= 3:
            per_fov[f"{fov:g}"] = reliability_bins(confidences[chosen], [hits[i] for i in chosen])
    bins = reliability_bins(confidences, hits)
    return {"n": len(queries), "hit_rate": float(sum(hits) / len(hits)), "bins": bins, "per_fov": per_fov,
            "max_gap": max(abs(b["predicted"] - b["observed"]) for b in bins),
            "plot_bins": reliability_bins(confidences, hits, bins=min(PLOT_BINS, len(queries))),
            "unreliable_share": float((confidences < UNRELIABLE_BELOW).mean())}


def format_bins(title: str, bins: list[dict]) -> str:
    lines = [title, f"{'bin':<6}{'n':>6}{'confidence range':>20}{'predicted':>11}{'observed':>10}{'gap':>8}"]
    for number, b in enumerate(bins, 1):
        gap = 100 * (b["predicted"] - b["observed"])
        lines.append(f"{number:<6}{b['n']:>6}{b['lo']:>12.2f} - {b['hi']:.2f}{100 * b['predicted']:>10.1f}%"
                     f"{100 * b['observed']:>9.1f}%{gap:>+7.1f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from geodistill.calibration import RADIUS_M, fit_calibrator
    from geodistill.checkpoint import read_checkpoint_meta, resolve_checkpoint, update_checkpoint_meta
    from geodistill.cli import UserError
    from geodistill.commands.evaluate import ProgressBar, check_output_file, open_split
    from geodistill.errors import CheckpointError
    from geodistill.inference import Localizer

    fovs = args.fov or ((360.0, 180.0, 90.0) if args.measure else DEFAULT_FOVS)
    windows = args.windows
    if any(not 0.0 < fov <= 360.0 for fov in fovs):
        raise UserError(f"--fov values must be in (0, 360] degrees, got {' '.join(f'{f:g}' for f in fovs)}")
    if windows < 1 or args.batch_size < 1 or args.every < 1 or (args.limit is not None and args.limit < 1):
        raise UserError("--windows, --batch-size, --every and --limit must be at least 1")
    check_output_file("--report", args.report)
    localizer = Localizer.from_checkpoint(args.checkpoint, role=args.role, device=args.device,
                                          with_calibration=args.measure)  # fitting replaces a stored (even stale) one
    if args.measure and localizer.calibrator is None:
        raise CheckpointError(f"{localizer.source} holds no confidence calibration for its {localizer.role} network; "
                              "fit one first (the same command without --measure)")
    area = args.area or localizer.config.data.area or "cross"
    split = args.split or ("test" if args.measure else "val")
    dataset, root = open_split(args.data, area, split, localizer)
    count = len(range(0, len(dataset), args.every))
    count = count if args.limit is None else min(args.limit, count)
    passes = sum(1 if fov >= 360.0 else windows for fov in fovs)
    with ProgressBar(count * passes, not args.no_progress) as bar:
        done = [0]

        def progress(current: int, _total: int) -> None:
            bar.update_to(done[0] + current, count * passes)
            if current >= count:
                done[0] += count

        queries = collect_queries(localizer, dataset, fovs, windows, args.seed, args.limit, args.batch_size, progress,
                                  args.every)
    setting = {"checkpoint": localizer.source, "role": localizer.role, "data": str(root), "area": area,
               "split": split, "fovs_deg": list(fovs), "windows": windows, "seed": args.seed, "every": args.every}
    if args.measure:
        calibrator = localizer.calibrator
    else:
        try:
            calibrator = fit_calibrator([q["features"] for q in queries], [q["error_m"] <= RADIUS_M for q in queries],
                                        fitted_on={k: v for k, v in setting.items() if k != "checkpoint"})
        except ValueError as error:
            raise UserError(f"cannot fit a confidence on {root} ({area}-area {split}): {error}") from error
        folder = resolve_checkpoint(args.checkpoint)
        stored = dict(read_checkpoint_meta(folder).get("calibration") or {})
        stored[localizer.role] = calibrator.to_dict()
        update_checkpoint_meta(folder, {"calibration": stored})
        print(f"confidence calibration of the {localizer.role} network written to {folder / 'config.json'}")
    report = {"setting": setting, "calibrator": calibrator.to_dict(), **measure(calibrator, queries)}
    kind = "held-out" if args.measure else "fitting (in-sample)"
    print(format_bins(f"{report['n']} {kind} queries ({area}-area {split}, FoV "
                      f"{'/'.join(f'{f:g}' for f in fovs)}), observed within-5 m rate {100 * report['hit_rate']:.1f}%",
                      report["bins"]))
    if args.report:
        path = Path(args.report).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(report, indent=1) + "\n")
        tmp.replace(path)
        print(f"report written to {path}")
    if args.measure and report["max_gap"] > MAX_BIN_GAP:
        print(f"warning: a bin is {100 * report['max_gap']:.1f} points off (more than {100 * MAX_BIN_GAP:.0f})",
              file=sys.stderr)
        return 1
    return 0

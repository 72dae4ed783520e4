"""The measured own-area run of docs/own-area.md, end to end on the CPU.

    nice -n 10 .venv/bin/python training/own_area_run.py [--out data/own_area] [--panos 80] [--checkpoint MODEL]

1. ``synth-area``: a hard-tier synthetic world no model has seen, as a UTM GeoTIFF plus panoramas whose EXIF GPS
   is the truth moved a uniform 5-15 m (resumable: a rerun keeps what is written);
2. ``refine`` with the model (default: refine's default model) -> ``refined_before.csv``;
3. ``make-dataset`` on the same orthophoto and panoramas (labels = their GPS) and ``adapt`` (GeoDistill on them,
   no label; adapt's recipe);
4. ``refine`` with the adapted checkpoint -> ``refined_after.csv``;
5. scores both against ``ground_truth.csv`` (``geodistill.area.scoring``) and writes ``<out>/own_area.json`` with
   the scores and the wall time of every step.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a source checkout works uninstalled

from geodistill.area.results import read_results  # noqa: E402
from geodistill.area.scoring import score_refined  # noqa: E402
from geodistill.area.synthetic import ORTHOPHOTO_FILE, PANORAMA_DIR, TRUTH_FILE, read_ground_truth  # noqa: E402
from geodistill.config import ADAPT  # noqa: E402
from geodistill.shipped import DEFAULT_LOCALIZER  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def step(name: str, args: list[str], timings: dict) -> None:
    command = [sys.executable, "-m", "geodistill", *args]
    print(f"\n== {name}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    timings[name] = time.perf_counter() - start
    print(f"== {name}: {timings[name]:.0f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "data" / "own_area"), help="working folder (default data/own_area)")
    parser.add_argument("--panos", type=int, default=80, help="panoramas of the area (default 80)")
    parser.add_argument("--seed", type=int, default=0, help="area seed (default 0)")
    parser.add_argument("--pano-size", default="2048x1024", help="panorama size (default 2048x1024)")
    parser.add_argument("--checkpoint", default=None, help="model to refine with and adapt (default: refine's)")
    parser.add_argument("--epochs", type=int, default=ADAPT.epochs, help=f"adapt epochs (default {ADAPT.epochs}, adapt's)")
    parser.add_argument("--batch-size", type=int, default=ADAPT.batch_size, help=f"adapt batch size (default {ADAPT.batch_size}, adapt's)")
    parser.add_argument("--lr", type=float, default=ADAPT.lr, help=f"adapt learning rate (default {ADAPT.lr:g}, adapt's)")
    parser.add_argument("--select", choices=("gps", "last"), default=ADAPT.select, help=f"adapt's best/ (default {ADAPT.select}, adapt's)")
    parser.add_argument("--device", default="cpu", help="device of refine and adapt (default cpu)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    area, timings = out / "area", {}
    model = ["--checkpoint", args.checkpoint] if args.checkpoint else []
    refine = ["refine", "--ortho", str(area / ORTHOPHOTO_FILE), "--panos", str(area / PANORAMA_DIR),
              "--device", args.device, "--no-progress", "--restart"]
    step("synth-area", ["synth-area", "--out", str(area), "--panos", str(args.panos), "--seed", str(args.seed),
                        "--pano-size", args.pano_size, "--no-progress"], timings)
    step("refine (before adapt)", [*refine, *model, "--out", str(out / "refined_before.csv")], timings)
    step("make-dataset", ["make-dataset", "--ortho", str(area / ORTHOPHOTO_FILE), "--panos", str(area / PANORAMA_DIR),
                          "--out", str(out / "dataset"), "--tile-px", "256", "--test-fraction", "0.1",
                          "--no-progress"], timings)
    run_dir = out / "adapt"
    step("adapt", ["adapt", "--checkpoint", args.checkpoint or DEFAULT_LOCALIZER, "--data", str(out / "dataset"),
                   "--run-dir", str(run_dir), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--lr", str(args.lr), "--select", args.select, "--device", args.device], timings)
    step("refine (after adapt)", [*refine, "--checkpoint", str(run_dir / "best"), "--out",
                                  str(out / "refined_after.csv")], timings)
    truth = read_ground_truth(area / TRUTH_FILE)
    report = {"panoramas": len(truth), "checkpoint": args.checkpoint or DEFAULT_LOCALIZER,
              "adapted": str(run_dir / "best"), "seconds": timings,
              "before": score_refined(truth, read_results(out / "refined_before.csv")),
              "after": score_refined(truth, read_results(out / "refined_after.csv"))}
    (out / "own_area.json").write_text(json.dumps(report, indent=1) + "\n")
    for label in ("before", "after"):
        score = report[label]
        refined, prior = score["refined"], score["prior"]
        print(f"{label}: refined mean {refined['mean_m']:.2f} m, median {refined['median_m']:.2f} m, "
              f"R@1/3/5 {refined['recall_1m']:.2f}/{refined['recall_3m']:.2f}/{refined['recall_5m']:.2f}; "
              f"prior mean {prior['mean_m']:.2f} m, median {prior['median_m']:.2f} m; "
              f"improved {100 * score['improved_share']:.0f} % of {refined['n']} (not refined: {len(score['not_refined'])})")
    print(f"written {out / 'own_area.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The golden check of the shipped default model: its accuracy on the bundled samples, written to a committed file.

    python training/golden_samples.py            # evaluate and write training/golden_samples.json
    python training/golden_samples.py --check    # evaluate and compare with the file (exit 1 on a difference)

The model is the shipped default (``checkpoints/<DEFAULT_LOCALIZER>``, named in ``geodistill/shipped.py``). The
protocol is the CLI's aligned one (``python -m geodistill evaluate --data assets/samples --area same --split all``):
every bundled sample, full panorama, known heading, seed 0, on the CPU. ``training/ship.sh`` writes the file after
exporting the checkpoints; ``tests/test_golden_samples.py`` evaluates again and fails when the mean or median moves
by more than ``TOLERANCE_M``, i.e. when a change to the code (or the checkpoint) changes what the shipped model
does, and when the file was written for another model than today's default (run this script again after switching
it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a source checkout works uninstalled

from geodistill.data.samples import samples_root  # noqa: E402
from geodistill.data.vigor import VigorDataset  # noqa: E402
from geodistill.evaluation import evaluate_localizer  # noqa: E402
from geodistill.inference import Localizer  # noqa: E402
from geodistill.shipped import DEFAULT_LOCALIZER  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = ROOT / "checkpoints" / DEFAULT_LOCALIZER
GOLDEN_FILE = ROOT / "training" / "golden_samples.json"
TOLERANCE_M = 0.02  # CPU evaluation is deterministic; this leaves room for other CPUs and BLAS builds only


def evaluate_samples(checkpoint: Path = CHECKPOINT) -> dict:
    """The aligned evaluation of ``checkpoint`` on every bundled sample: n, mean and median error in metres."""
    localizer = Localizer.from_checkpoint(checkpoint, device="cpu")
    dataset = VigorDataset(samples_root(), area="same", split="all", pano_height=localizer.pano_height,
                           sat_size=localizer.sat_size)
    summary = evaluate_localizer(localizer, dataset, orientation="aligned", seed=0).to_dict()
    return {"checkpoint": checkpoint.relative_to(ROOT).as_posix(), "data": "assets/samples (area same, split all)",
            "protocol": "aligned, full panorama, seed 0, cpu", "role": localizer.role, "n": summary["n"],
            "mean_m": round(summary["mean_m"], 4), "median_m": round(summary["median_m"], 4),
            "tolerance_m": TOLERANCE_M}


def differences(expected: dict, actual: dict) -> list[str]:
    """What moved beyond the tolerance (an empty list when the model still does what the file says)."""
    problems = [f"checkpoint: {expected['checkpoint']} -> {actual['checkpoint']} (the default model changed: run "
                "training/golden_samples.py to record the new one)"] \
        if expected["checkpoint"] != actual["checkpoint"] else []
    problems += [f"n: {expected['n']} -> {actual['n']}"] if expected["n"] != actual["n"] else []
    for key in ("mean_m", "median_m"):
        if abs(expected[key] - actual[key]) > expected["tolerance_m"]:
            problems.append(f"{key}: {expected[key]:.4f} -> {actual[key]:.4f} (tolerance {expected['tolerance_m']} m)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args(argv)
    actual = evaluate_samples()
    if args.check:
        problems = differences(json.loads(GOLDEN_FILE.read_text()), actual)
        print("\n".join(problems) or f"golden check passed: mean {actual['mean_m']} m, median {actual['median_m']} m")
        return 1 if problems else 0
    tmp = GOLDEN_FILE.with_name(GOLDEN_FILE.name + ".tmp")
    tmp.write_text(json.dumps(actual, indent=2) + "\n")
    tmp.replace(GOLDEN_FILE)
    print(f"wrote {GOLDEN_FILE.relative_to(ROOT)}: mean {actual['mean_m']} m, median {actual['median_m']} m")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pick the weak baseline of a seed sweep by validation mean error, and write the sweep's summary.

    python training/select_weak_seed.py SWEEP_DIR [--summary FILE]

``SWEEP_DIR`` holds one run folder per seed (``seed_<N>/``, as ``training/ship.sh`` trains them). Each run's
``best/`` checkpoint records its validation metrics; the run with the lowest validation mean error wins (ties:
lower median, then lower seed). Prints the winning run folder on stdout, and a table of every seed on stderr;
``--summary`` also writes that table as JSON. Only the GT-labelled validation split is used, never a test split.
Weak training is strongly seed-dependent at the CPU scale (docs/results.md), so ship.sh trains several seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

RUN_PATTERN = re.compile(r"^seed_(\d+)$")


class SweepError(RuntimeError):
    """The sweep folder holds no finished run to choose from."""


def read_runs(sweep: Path) -> list[dict]:
    """One record per finished run of the sweep: seed, folder, validation metrics and best epoch."""
    if not sweep.is_dir():
        raise SweepError(f"{sweep}: no such sweep folder")
    runs = []
    for folder in sorted(sweep.iterdir()):
        match = RUN_PATTERN.match(folder.name)
        meta_file = folder / "best" / "config.json"
        if not match or not meta_file.is_file():
            continue
        meta = json.loads(meta_file.read_text())
        metrics = meta.get("metrics") or {}
        if "mean_m" not in metrics:
            raise SweepError(f"{meta_file}: the checkpoint records no validation mean error")
        runs.append({"seed": int(match.group(1)), "run": str(folder), "epoch": meta.get("epoch"),
                     "mean_m": float(metrics["mean_m"]), "median_m": float(metrics.get("median_m", float("nan")))})
    if not runs:
        raise SweepError(f"{sweep}: no finished run (seed_<N>/best/config.json)")
    return runs


def best_run(runs: list[dict]) -> dict:
    """The run with the lowest validation mean error (then median, then seed)."""
    return min(runs, key=lambda run: (run["mean_m"], run["median_m"], run["seed"]))


def write_json_atomically(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as stream:
        json.dump(payload, stream, indent=2)
        stream.write("\n")
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep", type=Path, help="folder of seed_<N>/ run folders")
    parser.add_argument("--summary", type=Path, help="write every seed's validation metrics and the choice as JSON")
    args = parser.parse_args(argv)
    try:
        runs = read_runs(args.sweep)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    chosen = best_run(runs)
    for run in sorted(runs, key=lambda run: run["seed"]):
        mark = "  <- chosen" if run is chosen else ""
        print(f"seed {run['seed']}: validation mean {run['mean_m']:.2f} m, median {run['median_m']:.2f} m "
              f"(best epoch {run['epoch']}){mark}", file=sys.stderr)
    if args.summary:
        write_json_atomically(args.summary, {"selected_by": "validation mean_m", "chosen_seed": chosen["seed"],
                                             "runs": sorted(runs, key=lambda run: run["seed"])})
    print(chosen["run"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

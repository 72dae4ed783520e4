"""Rebuild everything that shows the shipped models, after training/ship.sh has exported and evaluated them.

    .venv/bin/python training/refresh_assets.py                    # every step, in the order below
    .venv/bin/python training/refresh_assets.py --only teaser tables
    .venv/bin/python training/refresh_assets.py --dry-run          # say what each step would do; change nothing

Steps:
  samples      assets/samples: 6 panoramas per city, seed 7, --tier hard (generated beside the old folder, then
               swapped in), and the tier named where the docs describe the samples
  golden       training/golden_samples.json: the default model on the new samples (training/golden_samples.py)
  readme       the output printed under the README's `predict` example (run again)
  teaser       docs/teaser.png (training/make_teaser.py) and its description in README.md and docs/synthetic-world.md
  screenshots  docs/screenshots/{explore,map,train,evaluate}.png (training/screenshots.py, shrunk)
  tables       docs/results/table.md and the tables of docs/results.md and README.md (training/results_table.py)

The default model is ``geodistill.shipped.DEFAULT_LOCALIZER``. Commit what changed afterwards (``git status``).
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("samples", "golden", "readme", "teaser", "screenshots", "tables")
SAMPLES_SEED, SAMPLES_PER_CITY = 7, 6
TIERS = ("easy", "medium", "hard")
_TIER = "(?:" + "|".join(TIERS) + ")"
# where the docs name the samples' tier: (file, pattern with the tier as group "tier")
TIER_MENTIONS = (
    ("assets/README.md", rf"(?P<tier>{_TIER})(?= tier \(the tier the shipped models were trained on)"),
    ("assets/README.md", rf"(?<=--seed 7 --tier )(?P<tier>{_TIER})"),
    ("README.md", rf"(?<=holds 24 such panoramas \()(?P<tier>{_TIER})(?= tier)"),
    ("docs/synthetic-world.md", rf"(?<=A bundled sample \()(?P<tier>{_TIER})(?= tier\))"),
    ("docs/synthetic-world.md", rf"(?<=bundled samples use the )(?P<tier>{_TIER})(?= tier)"),
)
TEASER_ALT = ("A bundled synthetic sample: the north-up aerial tile with the camera (red ring, heading arrow), the "
              "default model's heatmap and prediction on it, and the street panorama taken there (centre column = "
              "north)")
# the teaser's description: (file, pattern, replacement)
TEASER_MENTIONS = (("README.md", r"!\[[^\]]*\]\(docs/teaser\.png\)", f"![{TEASER_ALT}](docs/teaser.png)"),
                   ("docs/synthetic-world.md", r"!\[[^\]]*\]\(teaser\.png\)", f"![{TEASER_ALT}](teaser.png)"))


class RefreshError(RuntimeError):
    """A step cannot run or did not do what it should; the message names the step and the file."""


def rewrite(path: Path, pattern: str, replacement: str, dry_run: bool = False) -> bool:
    """Replace every match of ``pattern`` in ``path`` (atomically); whether the text changed.

    Raises:
        RefreshError: the pattern is not in the file (the docs were reworded: update this script).
    """
    text = path.read_text()
    new, count = re.subn(pattern, replacement, text)
    if count == 0:
        raise RefreshError(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: no text matches "
                           f"{pattern!r}; the docs changed, update training/refresh_assets.py")
    if new != text and not dry_run:
        write_atomic(path, new)
    return new != text


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def name_tier(tier: str, root: Path = ROOT, dry_run: bool = False) -> list[str]:
    """Write ``tier`` wherever the docs name the samples' tier; the files changed."""
    changed = []
    for file, pattern in TIER_MENTIONS:
        if rewrite(root / file, pattern, tier, dry_run) and file not in changed:
            changed.append(file)
    return changed


def run(command: list[str], dry_run: bool) -> None:
    print("  $ " + shlex.join(str(part) for part in command), flush=True)
    if not dry_run:
        result = subprocess.run([str(part) for part in command], cwd=ROOT)
        if result.returncode != 0:
            raise RefreshError(f"exit status {result.returncode}: {shlex.join(str(part) for part in command)}")


def python(*arguments) -> list[str]:
    return [sys.executable, *arguments]


def samples(args) -> None:
    target = ROOT / "assets" / "samples"
    fresh, old = target.with_name(".samples.new"), target.with_name(".samples.old")
    if not args.dry_run:
        shutil.rmtree(fresh, ignore_errors=True)
    run(python("-m", "geodistill", "synth", "--out", fresh, "--panos", SAMPLES_PER_CITY, "--seed", SAMPLES_SEED,
               "--tier", args.tier, "--workers", 2, "--no-progress"), args.dry_run)
    print(f"  swap {fresh.relative_to(ROOT)} in as {target.relative_to(ROOT)}")
    if not args.dry_run:
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        fresh.rename(target)
        shutil.rmtree(old)
    changed = name_tier(args.tier, dry_run=args.dry_run)
    print(f"  the docs name the {args.tier} tier" + (f" (changed: {', '.join(changed)})" if changed else ""))


def golden(args) -> None:
    run(python("training/golden_samples.py"), args.dry_run)


def readme(args) -> None:
    """Run the README's predict example and put what it prints in the block shown under it."""
    path = ROOT / "README.md"
    text = path.read_text()
    example = re.search(r"```bash\n(\.venv/bin/python -m geodistill predict \\\n(?:.*\\\n)*.*--gt-latlon.*)\n```",
                        text)
    if example is None:
        raise RefreshError("README.md: no ```bash block with the `predict ... --gt-latlon` example")
    argv = shlex.split(example.group(1).replace("\\\n", " "))
    shown = re.search(r"```\n(syn-[^\n]*\n(?:[^`][^\n]*\n)*)```", text[example.end():])
    if shown is None:
        raise RefreshError("README.md: no plain ``` block of printed output after the predict example")
    command = python(*argv[1:])
    print("  $ " + shlex.join(command), flush=True)
    if args.dry_run:
        return
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RefreshError(f"the README's predict example failed:\n{result.stderr}")
    start, end = example.end() + shown.start(1), example.end() + shown.end(1)
    write_atomic(path, text[:start] + result.stdout.strip() + "\n" + text[end:])


def teaser(args) -> None:
    run(python("training/make_teaser.py"), args.dry_run)
    for file, pattern, replacement in TEASER_MENTIONS:
        rewrite(ROOT / file, pattern, replacement, args.dry_run)


def screenshots(args) -> None:
    run(python("training/screenshots.py"), args.dry_run)


def stale_results(results: Path, checkpoints: Path) -> list[str]:
    """Evaluate files older than the checkpoint they name (``<model>_*.json`` vs ``<model>/weights.safetensors``):
    left from an earlier model, since training/ship.sh skips a result that exists."""
    stale = []
    for weights in sorted(checkpoints.glob("*/weights.safetensors")):
        stale += [path.name for path in sorted(results.glob(f"{weights.parent.name}_*_fov*.json"))
                  if path.stat().st_mtime < weights.stat().st_mtime]
    return stale


def tables(args) -> None:
    stale = stale_results(ROOT / "docs" / "results", ROOT / "checkpoints")
    if stale:
        print(f"  warning: older than their checkpoints (delete them and run STAGES=evaluate training/ship.sh): "
              f"{', '.join(stale)}", file=sys.stderr)
    run(python("training/results_table.py", "docs/results", "--write"), args.dry_run)


ACTIONS = {"samples": samples, "golden": golden, "readme": readme, "teaser": teaser, "screenshots": screenshots,
           "tables": tables}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=list(STEPS), metavar="STEP",
                        help=f"steps to run, in this order: {' '.join(STEPS)} (default: all)")
    parser.add_argument("--tier", choices=TIERS, default="hard", help="generator tier of the samples (default hard)")
    parser.add_argument("--dry-run", action="store_true", help="print what each step would do; change nothing")
    args = parser.parse_args(argv)
    unknown = [step for step in args.only if step not in STEPS]
    if unknown:
        parser.error(f"unknown step {', '.join(unknown)}; choose from {', '.join(STEPS)}")
    for step in (step for step in STEPS if step in args.only):
        print(f"[refresh] {step}", flush=True)
        started = time.monotonic()
        try:
            ACTIONS[step](args)
        except RefreshError as error:
            print(f"error: {step}: {error}", file=sys.stderr)
            return 1
        print(f"[refresh] {step}: {'planned' if args.dry_run else 'done'} in {time.monotonic() - started:.0f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

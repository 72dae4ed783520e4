"""Markdown results table of the shipped models from the evaluate JSON files written by training/ship.sh.

    python training/results_table.py docs/results > docs/results/table.md

Every number is read from a ``<model>_<area>_fov<deg>_<orientation>.json`` (or ``centre_<area>.json``) file
written by ``python -m geodistill evaluate --json``; nothing is computed here except formatting. Missing
files are listed on stderr and left out of the table (the CCVPE models' rows only once one of theirs exists).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MODELS = (("centre", "tile centre (no model)"), ("weak_baseline", "weak baseline"),
          ("geodistill_teacher", "GeoDistill teacher"), ("geodistill_student", "GeoDistill student"),
          ("ccvpe_base", "CCVPE base (supervised)"), ("ccvpe_geodistill_teacher", "CCVPE GeoDistill teacher"),
          ("ccvpe_geodistill_student", "CCVPE GeoDistill student"))
AREAS = (("cross", "cross-area"), ("same", "same-area"))
SETTINGS = (("360", "aligned"), ("180", "aligned"), ("360", "45"), ("180", "45"))
# the CCVPE models estimate their own heading, so they also have the unknown (full-circle) setting; they are
# optional (not shipped yet): left out without a note when none of their files exists
CCVPE_SETTINGS = SETTINGS + (("360", "unknown"), ("180", "unknown"))
ORIENTATION_LABELS = {"aligned": "aligned", "45": "±45° (orientation model)", "unknown": "unknown"}
OWN_ORIENTATION_LABELS = {"aligned": "aligned", "45": "±45° (own heading, prior 0±45°)",
                          "unknown": "unknown (own heading, full circle)"}
HEADER = ("| split | model | FoV | orientation | n | mean (m) | median (m) | R@1m | R@3m | R@5m "
          "| heading mean (°) | heading median (°) |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def _cell(value, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}%" if percent else f"{value:.2f}"


def _row(area_label: str, model_label: str, fov: str, orientation: str, summary: dict, own: bool = False) -> str:
    orientation_label = (OWN_ORIENTATION_LABELS if own else ORIENTATION_LABELS)[orientation]
    values = [area_label, model_label, f"{fov}°", orientation_label, str(summary["n"]),
              _cell(summary["mean_m"]), _cell(summary["median_m"]), _cell(summary["recall_1m"], True),
              _cell(summary["recall_3m"], True), _cell(summary["recall_5m"], True),
              _cell(summary.get("ori_mean_deg")), _cell(summary.get("ori_median_deg"))]
    return "| " + " | ".join(values) + " |"


def table(folder: Path) -> tuple[str, list[str]]:
    """(markdown table, missing file names)."""
    lines, missing = [HEADER], []
    for area, area_label in AREAS:
        for model, model_label in MODELS:
            own = model.startswith("ccvpe")
            if own and not any(folder.glob(f"{model}_*.json")):
                continue
            settings = [("any", "aligned")] if model == "centre" else CCVPE_SETTINGS if own else SETTINGS
            for fov, orientation in settings:
                name = f"centre_{area}" if model == "centre" else f"{model}_{area}_fov{fov}_{orientation}"
                path = folder / f"{name}.json"
                if not path.is_file():
                    missing.append(path.name)
                    continue
                summary = json.loads(path.read_text())
                lines.append(_row(area_label, model_label, "any" if model == "centre" else fov, orientation, summary,
                                  own))
    return "\n".join(lines) + "\n", missing


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    text, missing = table(Path(argv[0]))
    if missing:
        print(f"missing (left out): {', '.join(missing)}", file=sys.stderr)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Markdown results tables of the shipped models from the evaluate JSON files written by training/ship.sh.

    python training/results_table.py docs/results              # the full table (docs/results.md) on stdout
    python training/results_table.py docs/results --summary    # the README's compact summary on stdout
    python training/results_table.py docs/results --write      # both, into docs/results/table.md and between the
                                                               # markers of docs/results.md and README.md

Every number is read from a ``<model>_<area>_fov<fov>_<orientation>.json`` (or ``centre_<area>.json``) file
written by ``python -m geodistill evaluate --json``; nothing is computed here except formatting and the relative
change of each GeoDistill student against its own base. A model is listed when one of its files exists or it is
shipped (``--checkpoints``, default the checkpoints folder); its supervision (weak, noisy GPS, supervised) is read
from its checkpoint's config (a teacher's or student's from its base's: ``geodistill.shipped.supervision``) and its
role (base, teacher, student) from its name. A setting with no file is written ``n/a`` and listed on stderr.

The full table: per split (cross-area, same-area test) the tile centre and every model at FoV 360°, 180° and 90°
with the headings aligned, ±45° and unknown; columns mean, median, recall@1/3/5 m and the heading errors.
The summary: cross-area, FoV 360° and 180°, mean / median / recall@5 m per model, aligned, then ±45° and unknown
(with the heading median).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a source checkout works uninstalled

from geodistill import settings, shipped  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
AREAS = (("cross", "cross-area test"), ("same", "same-area test"))
FOVS = ("360", "180", "90")
HEADINGS = (("aligned", "aligned"), ("45", "±45°"), ("unknown", "unknown"))
SUMMARY_FOVS = ("360", "180")
NA, NOTHING = "n/a", "–"
HEADER = ("| model | supervision | role | FoV | heading | n | mean (m) | median (m) | R@1m | R@3m | R@5m "
          "| heading mean (°) | heading median (°) |\n" + "|---" * 13 + "|")
LEGEND = ("n/a: no result (the model cannot estimate a heading in that setting, or it was not evaluated); –: "
          "nothing to measure (the heading is known). ±45°: the G2SWeakly models with the orientation model "
          "(`checkpoints/orientation`), the CCVPE models with their own heading (prior 0 ± 45°); unknown: the full "
          "circle, only a model that estimates its own heading (CCVPE).")
MARKERS = {"full": ("<!-- results-table:full -->", "<!-- /results-table:full -->"),
           "summary": ("<!-- results-table:summary -->", "<!-- /results-table:summary -->")}
PAGES = {"full": "docs/results.md", "summary": "README.md"}


class Model(NamedTuple):
    name: str
    supervision: str
    role: str
    own_heading: bool  # estimates its own heading (CCVPE): the only kind with an "unknown" heading result

    @property
    def label(self) -> str:
        return f"`{self.name}`" + (" (default)" if self.name == shipped.DEFAULT_LOCALIZER else "")


def _read(folder: Path, name: str, missing: list[str]) -> dict | None:
    path = folder / f"{name}.json"
    if not path.is_file():
        missing.append(path.name)
        return None
    return json.loads(path.read_text())


def _config(checkpoints: Path, name: str | None) -> dict | None:
    path = checkpoints / str(name) / "config.json"
    return json.loads(path.read_text())["config"] if name and path.is_file() else None


def models(folder: Path, checkpoints: Path) -> list[Model]:
    """The models of the naming rule with an evaluate file in ``folder`` or a checkpoint in ``checkpoints``."""
    found = []
    for name in shipped.localizer_names():
        if not any(folder.glob(f"{name}_*_fov*.json")) and not (checkpoints / name / "config.json").is_file():
            continue
        config = _config(checkpoints, name)
        supervision = None if config is None else shipped.supervision(config, _config(checkpoints,
                                                                                      shipped.base_of(name)))
        own_heading = (config or {}).get("model", {}).get("architecture") == "ccvpe"
        found.append(Model(name, supervision or NA, shipped.role_of(name), own_heading))
    return found


def _number(summary: dict | None, key: str, percent: bool = False, known_heading: bool = False) -> str:
    if summary is None:
        return NA
    value = summary.get(key)
    if value is None:
        return NOTHING if known_heading else NA
    return f"{100 * value:.1f}%" if percent else f"{value:.2f}"


def _cells(summary: dict | None, known_heading: bool) -> list[str]:
    n = NA if summary is None else str(summary["n"])
    return [n, _number(summary, "mean_m"), _number(summary, "median_m"), _number(summary, "recall_1m", True),
            _number(summary, "recall_3m", True), _number(summary, "recall_5m", True),
            _number(summary, "ori_mean_deg", known_heading=known_heading),
            _number(summary, "ori_median_deg", known_heading=known_heading)]


def _line(values: list[str]) -> str:
    return "| " + " | ".join(values) + " |"


def _file(model: str, area: str, fov: str, heading: str) -> str:
    return f"{model}_{area}_fov{fov}_{heading}"


def _relative(folder: Path, area: str, listed: list[Model]) -> str:
    """The mean error of each student against its own base, aligned, at 180° and 360°."""
    parts = []
    for model in listed:
        name = model.name
        if model.role != "student":
            continue
        changes = []
        for fov in ("180", "360"):
            ignored: list[str] = []
            student = _read(folder, _file(name, area, fov, "aligned"), ignored)
            base = _read(folder, _file(shipped.base_of(name), area, fov, "aligned"), ignored)
            changes.append(NA if student is None or base is None else
                           f"{100 * (student['mean_m'] - base['mean_m']) / base['mean_m']:+.1f} %")
        parts.append(f"`{name}` vs `{shipped.base_of(name)}`: {changes[0]} at 180°, {changes[1]} at 360°")
    return ("Student vs its base at 180°/360° (mean, aligned): " + "; ".join(parts) + ".") if parts else ""


def table(folder: Path, checkpoints: Path | None = None) -> tuple[str, list[str]]:
    """(the full markdown table, the names of the missing files)."""
    checkpoints = settings.checkpoints_dir() if checkpoints is None else checkpoints
    listed, missing, blocks = models(folder, checkpoints), [], []
    for area, area_label in AREAS:
        lines = [f"**{area_label}**", "", HEADER]
        centre = _read(folder, f"centre_{area}", missing)
        lines.append(_line(["tile centre (no model)", NOTHING, NOTHING, "any", "any"] + _cells(centre, True)))
        for model in listed:
            for fov in FOVS:
                for heading, heading_label in HEADINGS:
                    expected = heading != "unknown" or model.own_heading
                    summary = _read(folder, _file(model.name, area, fov, heading), missing if expected else [])
                    lines.append(_line([model.label, model.supervision, model.role, f"{fov}°", heading_label]
                                       + _cells(summary, heading == "aligned")))
        relative = _relative(folder, area, listed)
        blocks.append("\n".join(lines + ([""] + [relative] if relative else [])))
    return "\n\n".join(blocks + [LEGEND]) + "\n", missing


def summary(folder: Path, checkpoints: Path | None = None) -> str:
    """The README's compact tables, cross-area: aligned at FoV 360° and 180° (mean / median / R@5 m per model),
    then the ±45° and unknown headings at the same FoVs (the same cells plus the heading median)."""
    checkpoints = settings.checkpoints_dir() if checkpoints is None else checkpoints
    ignored: list[str] = []
    listed = models(folder, checkpoints)
    header = ("| model | supervision | role | " + " | ".join(f"cross {fov}° aligned" for fov in SUMMARY_FOVS)
              + " |\n" + "|---" * (3 + len(SUMMARY_FOVS)) + "|")
    centre = _read(folder, "centre_cross", ignored)
    lines = [header, _line(["tile centre (no model)", NOTHING, NOTHING] + [_short(centre)] * len(SUMMARY_FOVS))]
    for model in listed:
        lines.append(_line([model.label, model.supervision, model.role]
                           + [_short(_read(folder, _file(model.name, "cross", fov, "aligned"), ignored))
                              for fov in SUMMARY_FOVS]))
    turned = [(fov, heading, label) for fov in SUMMARY_FOVS for heading, label in HEADINGS if heading != "aligned"]
    lines += ["", "| model | supervision | role | " + " | ".join(f"cross {fov}° {label}" for fov, _, label in turned)
              + " |", "|---" * (3 + len(turned)) + "|"]
    for model in listed:
        lines.append(_line([model.label, model.supervision, model.role]
                           + [_short(_read(folder, _file(model.name, "cross", fov, heading), ignored), heading=True)
                              for fov, heading, _ in turned]))
    return "\n".join(lines) + ("\n\nCells: mean / median (m) / recall@5 m, and with a turned heading the heading median "
                               "(°); n/a: not evaluated, or (unknown) the model cannot estimate a heading over the "
                               "full circle. ±45°: the G2SWeakly models with `checkpoints/orientation`, the CCVPE "
                               "models with their own heading.\n")


def _short(result: dict | None, heading: bool = False) -> str:
    if result is None:
        return NA
    cell = f"{result['mean_m']:.2f} / {result['median_m']:.2f} / {100 * result['recall_5m']:.1f}%"
    if heading:
        cell += " / " + (NA if result.get("ori_median_deg") is None else f"{result['ori_median_deg']:.1f}°")
    return cell


def replace_between_markers(text: str, kind: str, content: str, page: str) -> str:
    """``text`` with what lies between the ``kind`` markers replaced by ``content``.

    Raises:
        ValueError: the page lacks the markers (named, with the page).
    """
    start, end = MARKERS[kind]
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{page}: needs exactly one {start} ... {end} pair around the {kind} results table")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{content}{end}{tail}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write(folder: Path, checkpoints: Path | None = None, root: Path = ROOT) -> list[str]:
    """Write ``folder/table.md`` and both tables between the markers of their pages; the missing file names."""
    full, missing = table(folder, checkpoints)
    texts = {"full": full, "summary": summary(folder, checkpoints)}
    pages = {kind: replace_between_markers((root / page).read_text(), kind, texts[kind], page)
             for kind, page in PAGES.items()}  # every page checked before any is written
    _write_atomic(folder / "table.md", full)
    for kind, page in PAGES.items():
        _write_atomic(root / page, pages[kind])
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="folder of evaluate JSON files (docs/results)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--summary", action="store_true", help="print the README's compact summary")
    mode.add_argument("--write", action="store_true", help="write table.md and both tables into their pages")
    parser.add_argument("--checkpoints", type=Path, default=None,
                        help="checkpoints folder whose configs give each model's supervision (default: the shipped)")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        print(f"error: {args.results}: no such results folder", file=sys.stderr)
        return 2
    if args.summary:
        sys.stdout.write(summary(args.results, args.checkpoints))
        return 0
    if args.write:
        try:
            missing = write(args.results, args.checkpoints)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    else:
        text, missing = table(args.results, args.checkpoints)
        sys.stdout.write(text)
    if missing:
        print(f"missing (n/a in the table): {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Check a VIGOR-layout root and explain, for each problem found, how to fix it.

``check_vigor_root(root)`` looks at the folders, the split files (every record must parse), the images they
name (present, readable, not truncated, right shape) and the per-city metres per pixel, and counts everything per
city. ``report.ok`` is False when anything would stop the loader.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from geodistill.data.images import open_image
from geodistill.data.vigor import (
    CITIES,
    CROSS_TEST_CITIES,
    CROSS_TRAIN_CITIES,
    LABEL_TILE_PX,
    SPLIT_DIR_NAMES,
    LabelLine,
    city_meters_per_pixel,
    extra_city_names,
    find_split_dir,
    find_split_file,
    parse_label_line,
    read_records_text,
)
from geodistill.errors import DataError
from geodistill.geometry.frames import VIGOR_METERS_PER_PIXEL

logger = logging.getLogger("geodistill.data.checker")

SPLIT_BASES = ("pano_label_balanced", "same_area_balanced_train", "same_area_balanced_test")
IMAGE_CHECKS = ("none", "quick", "full")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_GET_SPLITS = ("get the split files with your VIGOR copy (the SliceMatch-corrected labels go in splits__corrected/), "
               "or generate a synthetic set with `python -m geodistill synth --out DIR`")
_RELOAD = "re-download or re-extract these files (or regenerate a synthetic set); to train anyway set data.skip_bad_images=true"


@dataclass
class Problem:
    """One finding: ``severity`` 'error' (the loader would fail) or 'warning'."""

    severity: str
    where: str
    message: str
    fix: str = ""


@dataclass
class CityCounts:
    panoramas: int = 0
    tiles: int = 0
    records: dict[str, int] = field(default_factory=dict)  # split-file base name -> label records
    meters_per_pixel: float | None = None


@dataclass
class DataReport:
    """The outcome of :func:`check_vigor_root`."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    cities: dict[str, CityCounts] = field(default_factory=dict)
    usable_areas: list[str] = field(default_factory=list)
    split_dir: Path | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.usable_areas)

    def add(self, severity: str, where, message: str, fix: str = "") -> None:
        self.problems.append(Problem(severity, str(where), message, fix))

    def summary(self) -> str:
        """A human-readable report: counts per city, each problem with its fix, and the verdict."""
        lines = [f"VIGOR root: {self.root}", f"split folder: {self.split_dir or '(none)'}"]
        if self.cities:
            header = f"{'city':<14}{'panoramas':>10}{'tiles':>8}{'cross':>8}{'same-train':>12}{'same-test':>11}{'m/px@640':>10}"
            lines += ["", header]
            for city, counts in self.cities.items():
                cells = [counts.records.get(base, "-") for base in SPLIT_BASES]
                mpp = f"{counts.meters_per_pixel:.6f}" if counts.meters_per_pixel else "-"
                lines.append(f"{city:<14}{counts.panoramas:>10}{counts.tiles:>8}"
                             f"{cells[0]:>8}{cells[1]:>12}{cells[2]:>11}{mpp:>10}")
        for title, group in (("errors", self.errors), ("warnings", self.warnings)):
            if group:
                lines += ["", f"{title} ({len(group)}):"]
                for problem in group:
                    lines.append(f"  - {problem.where}: {problem.message}")
                    if problem.fix:
                        lines.append(f"    fix: {problem.fix}")
        areas = ", ".join(self.usable_areas) or "none"
        if self.errors and self.usable_areas:
            areas = f"{areas} (counting only the cities without errors; fix the errors above first)"
        verdict = "OK" if self.ok else "NOT USABLE"
        lines += ["", f"usable areas: {areas}", f"verdict: {verdict} ({len(self.errors)} errors, {len(self.warnings)} warnings)"]
        return "\n".join(lines)


def _examples(items: list, limit: int = 5) -> str:
    shown = "; ".join(str(item) for item in items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _has_valid_end(path: Path) -> bool:
    """Cheap truncation test: a JPEG ends with the EOI marker, a PNG with its IEND chunk."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        handle.seek(max(0, os.path.getsize(path) - 64))
        tail = handle.read().rstrip(b"\x00")
    if head.startswith(b"\xff\xd8"):
        return b"\xff\xd9" in tail  # entropy-coded data never holds FF D9, so only the EOI marker matches
    if head.startswith(b"\x89PNG"):
        return b"IEND" in tail[-12:]
    return True


def _image_problem(path: Path, kind: str, images: str) -> str | None:
    """None when the image is fine, else what is wrong with it."""
    try:
        if images == "full":
            width, height = open_image(path).size
        else:
            if path.stat().st_size == 0:
                return "empty file"
            with Image.open(path) as image:
                width, height = image.size
            if not _has_valid_end(path):
                return "truncated (the file ends early)"
    except DataError as error:
        return str(error).replace(f"{path}: ", "")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return f"unreadable ({error})"
    if kind == "panorama" and abs(width / height - 2.0) > 0.02:
        return f"{width}x{height} is not a 2:1 equirectangular panorama"
    if kind == "satellite" and width != height:
        return f"{width}x{height} is not a square tile"
    return None


def _city_names(root: Path, split_dir: Path | None) -> list[str]:
    found = [c for c in CITIES if (root / c).is_dir() or (split_dir is not None and (split_dir / c).is_dir())]
    return found + extra_city_names(root)


def _check_split_file(report: DataReport, path: Path) -> tuple[list[LabelLine], bool]:
    parsed, bad, seen, duplicates, off_centre = [], [], set(), [], 0
    for number, text in read_records_text(path):
        try:
            line = parse_label_line(text)
        except DataError as error:
            bad.append(f"line {number}: {error}")
            continue
        if line.pano_name in seen:
            duplicates.append(line.pano_name)
        seen.add(line.pano_name)
        off_centre += max(abs(line.deltas[0][0]), abs(line.deltas[0][1])) > LABEL_TILE_PX / 4 + 2
        parsed.append(line)
    if bad:
        report.add("error", path, f"{len(bad)} label line(s) do not parse: {_examples(bad, 3)}",
                   "each record must be 13 tokens: '<id>,<lat>,<lon>,.jpg' then 4 x 'satellite_<lat>_<lon>.png Δrow Δcol'")
    if duplicates:
        report.add("warning", path, f"{len(duplicates)} panorama(s) listed twice: {_examples(duplicates, 3)}",
                   "remove the repeated lines")
    if off_centre:
        report.add("warning", path, f"{off_centre} positive tile(s) have the camera outside the central quarter (|Δ| > 162 px)",
                   "check that the positive tile comes first on each line")
    return parsed, not bad


def _check_references(report: DataReport, root: Path, city: str, lines: list[LabelLine], images: str) -> None:
    pano_dir, sat_dir = root / city / "panorama", root / city / "satellite"
    on_disk = {pano_dir: set(os.listdir(pano_dir)) if pano_dir.is_dir() else set(),
               sat_dir: set(os.listdir(sat_dir)) if sat_dir.is_dir() else set()}
    panos = sorted({line.pano_name for line in lines})
    tiles = sorted({name for line in lines for name in line.sat_names})
    for folder, names, kind in ((pano_dir, panos, "panorama"), (sat_dir, tiles, "satellite")):
        missing = [n for n in names if n not in on_disk[folder]]
        if missing:
            report.add("error", folder,
                       f"{len(missing)} {kind} file(s) named in the split files are missing: {_examples(missing)}",
                       f"copy the missing files into {folder} ({_RELOAD})")
        if images == "none":
            continue
        bad = []
        for name in names:
            if name in on_disk[folder]:
                problem = _image_problem(folder / name, kind, images)
                if problem:
                    bad.append(f"{name} ({problem})")
        if bad:
            report.add("error", folder, f"{len(bad)} {kind} image(s) cannot be used: {_examples(bad)}", _RELOAD)


def _check_city(report: DataReport, root: Path, city: str, images: str) -> set[str]:
    """Check one city; returns the split files (base names) the loader can use."""
    counts = report.cities.setdefault(city, CityCounts())
    errors_before = len(report.errors)
    for sub in ("panorama", "satellite"):
        folder = root / city / sub
        if not folder.is_dir():
            report.add("error", folder, "folder missing", f"put the city's {sub} images in {folder}")
        else:
            count = sum(1 for entry in os.scandir(folder) if entry.name.lower().endswith(_IMAGE_SUFFIXES))
            setattr(counts, "panoramas" if sub == "panorama" else "tiles", count)
    try:
        counts.meters_per_pixel = city_meters_per_pixel(root, city)
    except DataError as error:
        report.add("error", root / city, f"metres per pixel unknown: {error}",
                   f"write {root / city / 'metadata.json'} with {{\"meters_per_pixel\": <m/px of the 640-px tiles>}}")
    reference = VIGOR_METERS_PER_PIXEL.get(city)
    if counts.meters_per_pixel and reference and abs(counts.meters_per_pixel / reference - 1.0) > 0.01:
        report.add("warning", root / city / "metadata.json",
                   f"m/px {counts.meters_per_pixel:.6f} differs from VIGOR's corrected {reference} for {city}",
                   "fine for synthetic worlds; for real VIGOR remove the metadata file")
    parsed: dict[str, list[LabelLine]] = {}
    good: set[str] = set()
    if report.split_dir is None:
        return good
    for base in SPLIT_BASES:
        path = find_split_file(report.split_dir, city, base)
        if path is None:
            report.add("error", report.split_dir / city, f"missing {base}__corrected.txt (or {base}.txt)", _GET_SPLITS)
            continue
        parsed[base], parses = _check_split_file(report, path)
        counts.records[base] = len(parsed[base])
        if parses:
            good.add(base)
    split_errors = len(report.errors) - errors_before
    _check_satellite_list(report, root, city)
    _check_references(report, root, city, [line for lines in parsed.values() for line in lines], images)
    train = {line.pano_name for line in parsed.get("same_area_balanced_train", [])}
    overlap = train & {line.pano_name for line in parsed.get("same_area_balanced_test", [])}
    if overlap:
        report.add("warning", report.split_dir / city, f"{len(overlap)} panorama(s) are in both same-area train and test",
                   "the same-area lists should be disjoint")
    city_errors = len(report.errors) - errors_before - split_errors
    return good if city_errors == 0 else set()


def _check_satellite_list(report: DataReport, root: Path, city: str) -> None:
    path = report.split_dir / city / "satellite_list.txt"
    if not path.is_file():
        report.add("warning", path, "missing (not needed by the loader)", "copy it from the VIGOR split archive")
        return
    folder = root / city / "satellite"
    on_disk = set(os.listdir(folder)) if folder.is_dir() else set()
    missing = [name for _, name in read_records_text(path) if name not in on_disk]
    if missing:
        report.add("warning", path, f"{len(missing)} listed tile(s) are not in {folder}: {_examples(missing)}", _RELOAD)


def check_vigor_root(root: str | os.PathLike, images: str = "quick") -> DataReport:
    """Check a VIGOR-layout root.

    Args:
        root: the dataset root.
        images: 'none' (names only), 'quick' (open every named image's header and check its end marker) or
            'full' (decode every image; slow on the real dataset).

    Returns:
        A :class:`DataReport`; ``report.ok`` tells whether the loader can use the root.
    """
    if images not in IMAGE_CHECKS:
        raise ValueError(f"images must be one of {IMAGE_CHECKS}, got {images!r}")
    report = DataReport(Path(root))
    if not report.root.is_dir():
        report.add("error", report.root, "dataset root not found or not a folder",
                   "pass the folder that holds <City>/panorama, <City>/satellite and splits__corrected/")
        return report
    try:
        report.split_dir = find_split_dir(report.root)
    except DataError:
        report.add("error", report.root, f"no split folder (looked for {', '.join(SPLIT_DIR_NAMES)})", _GET_SPLITS)
    cities = _city_names(report.root, report.split_dir)
    if not cities:
        report.add("error", report.root, f"no city folders (expected some of {', '.join(CITIES)})",
                   "point at the VIGOR root itself, not at a city folder or a parent folder")
    ok_files: dict[str, set[str]] = {}
    for city in cities:
        logger.info("checking %s", city)
        ok_files[city] = _check_city(report, report.root, city, images)
    _decide_areas(report, cities, ok_files)
    return report


def _decide_areas(report: DataReport, cities: list[str], ok_files: dict[str, set[str]]) -> None:
    same = {"same_area_balanced_train", "same_area_balanced_test"}
    if cities and all(same <= ok_files.get(city, set()) for city in cities):
        report.usable_areas.append("same")
    ready = {city for city, files in ok_files.items() if "pano_label_balanced" in files}
    train, test = ready & set(CROSS_TRAIN_CITIES), ready & set(CROSS_TEST_CITIES)
    if train and test:
        report.usable_areas.append("cross")
    absent = [c for c in CITIES if c not in cities]
    if absent:
        report.add("warning", report.root, f"cities absent: {', '.join(absent)}",
                   f"cross-area trains on {' + '.join(CROSS_TRAIN_CITIES)} and tests on {' + '.join(CROSS_TEST_CITIES)}; "
                   "the loader uses the cities that are present")
    if not report.usable_areas and not report.errors:
        report.add("error", report.root, "neither same-area nor cross-area can be loaded", _GET_SPLITS)

"""Each panorama's prior: its rough GPS position (a CSV or the EXIF GPS tags) and, when known, its heading.

``read_priors(pano_dir, gps_csv=None)`` returns the panoramas that can be localized (:class:`PanoPrior`) and those
that cannot (:class:`Skipped`, with the reason: no GPS and not in the CSV, not an image, not 2:1, a bad CSV row).
The CSV has rows ``name,lat,lon[,heading]`` (a header is optional; a name matches a file name with or without its
extension). A CSV position wins over EXIF; the heading comes from the CSV, else GPano XMP, else EXIF.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from geodistill.area.exif import read_gps, read_heading
from geodistill.data.pairs import MIN_PANO_HEIGHT, PANO_ASPECT_TOLERANCE
from geodistill.errors import DataError

logger = logging.getLogger("geodistill.area.priors")

PANO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")
CSV_COLUMNS = ("name", "lat", "lon", "heading")


@dataclass(frozen=True)
class PanoPrior:
    """A panorama with its prior position (degrees, WGS84) and optional prior heading (degrees from north)."""

    path: Path
    lat: float
    lon: float
    heading_deg: float | None = None
    position_source: str = "exif"        # "csv" or "exif"
    heading_source: str | None = None    # "csv", "gpano/exif" or None

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Skipped:
    """A panorama that is not localized, and why (a sentence naming the problem)."""

    path: Path
    reason: str

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class CsvPrior:
    lat: float | None
    lon: float | None
    heading_deg: float | None
    problem: str | None = None


def list_panoramas(pano_dir: str | os.PathLike) -> list[Path]:
    """Image files directly in ``pano_dir``, sorted by name.

    Raises:
        DataError: the folder is missing or holds no image.
    """
    folder = Path(pano_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such panorama folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PANO_SUFFIXES
                   and not p.name.startswith("."))
    if not files:
        raise DataError(f"{folder}: no panoramas found (expected {', '.join(PANO_SUFFIXES)} files)")
    return files


def _number(text: str | None) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _row_prior(cells: list[str], origin: str) -> CsvPrior:
    try:
        lat, lon = _number(cells[1]), _number(cells[2])
        heading = _number(cells[3]) if len(cells) > 3 else None
    except (ValueError, IndexError):
        return CsvPrior(None, None, None, f"{origin}: expected name,lat,lon[,heading] with numbers, got "
                                          f"{','.join(cells)!r}")
    if lat is None or lon is None or not (abs(lat) <= 90.0 and abs(lon) <= 180.0):
        return CsvPrior(None, None, None, f"{origin}: latitude/longitude missing or out of range "
                                          f"({','.join(cells)!r})")
    return CsvPrior(lat, lon, None if heading is None else heading % 360.0)


def read_gps_csv(path: str | os.PathLike) -> dict[str, CsvPrior]:
    """Name -> prior of a ``name,lat,lon[,heading]`` CSV (header optional; columns found by name when present).

    Rows that cannot be read are kept with their problem (the panorama is then skipped with it).

    Raises:
        DataError: the file is missing or unreadable.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: cannot read the GPS CSV ({error})") from error
    start, order = 0, list(range(len(CSV_COLUMNS)))
    if rows and not _is_number(rows[0][1] if len(rows[0]) > 1 else ""):
        header = [cell.strip().lower() for cell in rows[0]]
        missing = [name for name in CSV_COLUMNS[:3] if name not in header]
        if missing:
            raise DataError(f"{path}: the header must name the columns name, lat, lon (optional heading); "
                            f"missing {', '.join(missing)}")
        order = [header.index(name) if name in header else -1 for name in CSV_COLUMNS]
        start = 1
    priors: dict[str, CsvPrior] = {}
    for line, row in enumerate(rows[start:], start=start + 1):
        cells = [row[i].strip() if 0 <= i < len(row) else "" for i in order]
        priors[cells[0]] = _row_prior(cells, f"{path.name} line {line}")
    return priors


def _is_number(text: str) -> bool:
    try:
        return _number(text) is not None
    except ValueError:
        return False


def _csv_entry(priors: dict[str, CsvPrior], path: Path) -> CsvPrior | None:
    return priors.get(path.name) or priors.get(path.stem)


def panorama_problem(path: Path) -> str | None:
    """Why a file cannot be a panorama (not an image, not 2:1, too small), or None. Reads the header only."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as error:
        return f"{path.name}: not a readable image ({error})"
    if abs(width / height - 2.0) > 2.0 * PANO_ASPECT_TOLERANCE:
        return (f"{path.name}: image is {width}x{height} (aspect {width / height:.2f}:1); an equirectangular "
                "panorama must be 2:1")
    if height < MIN_PANO_HEIGHT:
        return f"{path.name}: panorama is only {width}x{height}; expected at least {2 * MIN_PANO_HEIGHT}x{MIN_PANO_HEIGHT}"
    return None


def read_priors(pano_dir: str | os.PathLike, gps_csv: str | os.PathLike | None = None
                ) -> tuple[list[PanoPrior], list[Skipped]]:
    """The prior of every panorama in ``pano_dir`` (sorted by name), and the panoramas skipped with the reason.

    Raises:
        DataError: the folder is missing or empty, or the CSV is unreadable or has a wrong header.
    """
    files = list_panoramas(pano_dir)
    table = read_gps_csv(gps_csv) if gps_csv is not None else {}
    known = {p.name for p in files} | {p.stem for p in files}
    unmatched = sorted(name for name in table if name not in known)
    if unmatched:
        logger.warning("%s: %d rows name no panorama of %s (e.g. %s)", gps_csv, len(unmatched), pano_dir,
                       unmatched[0])
    priors: list[PanoPrior] = []
    skipped: list[Skipped] = []
    for path in files:
        problem = panorama_problem(path)
        if problem is not None:
            skipped.append(Skipped(path, problem))
            continue
        entry = _csv_entry(table, path)
        if entry is not None and entry.problem is not None:
            skipped.append(Skipped(path, entry.problem))
            continue
        try:
            exif_heading = read_heading(path)
            position = (entry.lat, entry.lon) if entry is not None else read_gps(path)
        except DataError as error:
            skipped.append(Skipped(path, str(error)))
            continue
        if position is None:
            where = f" and it is not in {Path(gps_csv).name}" if gps_csv is not None else " (give its position " \
                "in a CSV with --gps)"
            skipped.append(Skipped(path, f"{path.name}: no GPS position: the image has no EXIF GPS tags{where}"))
            continue
        heading, heading_source = (entry.heading_deg, "csv") if entry is not None and entry.heading_deg is not None \
            else (exif_heading, None if exif_heading is None else "gpano/exif")
        priors.append(PanoPrior(path, float(position[0]), float(position[1]), heading,
                                "csv" if entry is not None else "exif", heading_source))
    return priors, skipped

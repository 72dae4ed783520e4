"""The VIGOR dataset: file-name GPS, 13-token label lines, split files and a dataset of sample dicts.

Layout and conventions are those of ``anchors.md`` §5: ``<City>/panorama/<id>,<lat>,<lon>,.jpg``,
``<City>/satellite/satellite_<lat>_<lon>.png``, split files under ``splits__corrected``, ``splits_new`` or
``splits``. A label's Δrow, Δcol are pixels of the 640-px tile: ``row = 320 + Δrow`` (Δrow > 0 south of the
centre), ``col = 320 − Δcol`` (Δcol > 0 west of the centre).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from geodistill.data.collate import assemble_sample
from geodistill.data.images import read_rgb_resized
from geodistill.errors import DataError
from geodistill.geometry.frames import (
    VIGOR_METERS_PER_PIXEL,
    meters_per_pixel_at,
    uv_to_xy,
    vigor_delta_to_uv,
)

logger = logging.getLogger("geodistill.data.vigor")

CITIES = ("NewYork", "Seattle", "SanFrancisco", "Chicago")
CROSS_TRAIN_CITIES = ("NewYork", "Seattle")
CROSS_TEST_CITIES = ("SanFrancisco", "Chicago")
SPLIT_DIR_NAMES = ("splits__corrected", "splits_new", "splits")
LABEL_TILE_PX = 640
PANO_SUFFIXES = (",.jpg", ",.jpeg", ",.png")
SAT_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "val", "test", "all")
AREAS = ("same", "cross")
_ASPECT_TOLERANCE = 0.01


def parse_pano_name(name: str) -> tuple[str, float, float]:
    """``"<id>,<lat>,<lon>,.jpg"`` -> (id, lat, lon) as float64; ids may contain '-' and '_'."""
    base = os.path.basename(name)
    suffix = next((s for s in PANO_SUFFIXES if base.lower().endswith(s)), None)
    fields = base[: -len(suffix)].rsplit(",", 2) if suffix else []
    try:
        pano_id, lat, lon = fields
        lat_value, lon_value = float(lat), float(lon)
    except ValueError:
        raise DataError(f"panorama name {base!r} does not look like '<id>,<lat>,<lon>,.jpg'") from None
    if not pano_id or not (-90.0 <= lat_value <= 90.0 and -180.0 <= lon_value <= 180.0):
        raise DataError(f"panorama name {base!r}: empty id or latitude/longitude out of range")
    return pano_id, lat_value, lon_value


def parse_sat_name(name: str) -> tuple[float, float]:
    """``"satellite_<lat>_<lon>.png"`` -> (lat, lon) as float64 (split on '_', never on '-')."""
    base = os.path.basename(name)
    suffix = next((s for s in SAT_SUFFIXES if base.lower().endswith(s)), None)
    fields = base[: -len(suffix)].rsplit("_", 2) if suffix else []
    try:
        prefix, lat, lon = fields
        lat_value, lon_value = float(lat), float(lon)
    except ValueError:
        raise DataError(f"satellite name {base!r} does not look like 'satellite_<lat>_<lon>.png'") from None
    if not prefix.endswith("satellite") or not (-90.0 <= lat_value <= 90.0 and -180.0 <= lon_value <= 180.0):
        raise DataError(f"satellite name {base!r}: expected 'satellite_<lat>_<lon>.png' with valid coordinates")
    return lat_value, lon_value


@dataclass(frozen=True)
class LabelLine:
    """One parsed label line: the panorama and its four tiles (positive first) with 640-px deltas."""

    pano_name: str
    sat_names: tuple[str, str, str, str]
    deltas: tuple[tuple[float, float], ...]  # four (delta_row, delta_col), 640-px pixels


def parse_label_line(line: str) -> LabelLine:
    """Parse ``pano sat1 dr1 dc1 sat2 dr2 dc2 sat3 dr3 dc3 sat4 dr4 dc4`` (13 whitespace-separated tokens)."""
    tokens = line.split()
    if len(tokens) != 13:
        raise DataError(f"label line has {len(tokens)} tokens, expected 13 (panorama, then 4 x satellite Δrow Δcol)")
    parse_pano_name(tokens[0])
    sat_names, deltas = [], []
    for k in range(4):
        sat_name, row_text, col_text = tokens[1 + 3 * k: 4 + 3 * k]
        parse_sat_name(sat_name)
        try:
            delta = (float(row_text), float(col_text))
        except ValueError:
            raise DataError(f"label line: Δrow/Δcol {row_text!r} {col_text!r} of tile {k + 1} are not numbers") from None
        if not all(math.isfinite(value) for value in delta):
            raise DataError(f"label line: Δrow/Δcol of tile {k + 1} are not finite")
        sat_names.append(sat_name)
        deltas.append(delta)
    return LabelLine(tokens[0], tuple(sat_names), tuple(deltas))


def read_records_text(path: Path) -> list[tuple[int, str]]:
    """Non-empty lines of a text file with their 1-based line numbers (records, not newline characters)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error}") from error
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_label_file(path: Path) -> list[LabelLine]:
    """Every label line of a split file; a line that does not parse raises DataError with file and line number."""
    lines = []
    for number, text in read_records_text(path):
        try:
            lines.append(parse_label_line(text))
        except DataError as error:
            raise DataError(f"{path}:{number}: {error}") from None
    return lines


def find_split_dir(root: str | os.PathLike) -> Path:
    """The first of ``splits__corrected``, ``splits_new``, ``splits`` under ``root``."""
    for name in SPLIT_DIR_NAMES:
        candidate = Path(root) / name
        if candidate.is_dir():
            return candidate
    raise DataError(
        f"{root}: no split folder; expected one of {', '.join(SPLIT_DIR_NAMES)} holding <City>/ split files "
        f"(run `python -m geodistill check-data {root}` for details)"
    )


def find_split_file(split_dir: Path, city: str, base: str) -> Path | None:
    """``<split_dir>/<city>/<base>__corrected.txt`` or ``<base>.txt``, whichever exists first."""
    for name in (f"{base}__corrected.txt", f"{base}.txt"):
        if (split_dir / city / name).is_file():
            return split_dir / city / name
    return None


def city_meters_per_pixel(root: str | os.PathLike, city: str, latitude_deg: float | None = None) -> float:
    """Metres per pixel of a city's 640-px tiles: ``<City>/metadata.json``, else VIGOR's table, else latitude.

    The latitude rule is the Web-Mercator zoom-20 ground resolution; without ``latitude_deg`` the first
    parseable tile name in ``<City>/satellite`` gives it.
    """
    metadata = Path(root) / city / "metadata.json"
    if metadata.is_file():
        try:
            value = float(json.loads(metadata.read_text())["meters_per_pixel"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"{metadata}: needs a JSON object with a numeric 'meters_per_pixel' ({error})") from error
        if not (math.isfinite(value) and value > 0):
            raise DataError(f"{metadata}: meters_per_pixel must be a positive number, got {value}")
        return value
    if city in VIGOR_METERS_PER_PIXEL:
        return float(VIGOR_METERS_PER_PIXEL[city])
    if latitude_deg is None:
        satellite_dir = Path(root) / city / "satellite"
        names = sorted(os.listdir(satellite_dir)) if satellite_dir.is_dir() else []
        for name in names:
            try:
                latitude_deg = parse_sat_name(name)[0]
                break
            except DataError:
                continue
    if latitude_deg is None:
        raise DataError(f"{city}: no metadata.json, not a VIGOR city and no tile name to take a latitude from")
    return float(meters_per_pixel_at(latitude_deg, 20))


def train_val_indices(count: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded permutation of ``range(count)``: first (1 - val_fraction) share train, the rest validation (both sorted)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    permutation = np.random.default_rng(seed).permutation(count)
    n_val = int(round(count * val_fraction))
    return sorted(int(i) for i in permutation[: count - n_val]), sorted(int(i) for i in permutation[count - n_val:])


def read_sidecar(pano_path: Path) -> dict | None:
    """The optional ``<pano stem>.json`` record next to a panorama (None when absent or unreadable)."""
    stem = pano_path.name[: -len(pano_path.suffix)] if pano_path.suffix else pano_path.name
    for candidate in (pano_path.with_name(stem + ".json"), pano_path.with_name(stem.rstrip(",") + ".json")):
        if candidate.is_file():
            try:
                record = json.loads(candidate.read_text())
            except (OSError, ValueError) as error:
                logger.warning("ignoring unreadable sidecar %s: %s", candidate, error)
                return None
            return record if isinstance(record, dict) else None
    return None


def camera_height_from_sidecar(sidecar: dict | None, default_m: float) -> float:
    value = sidecar.get("camera_height_m") if sidecar else None
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return float(value)
    return default_m


@dataclass(frozen=True)
class VigorRecord:
    """One sample: a panorama with one of its four tiles (``tile_index`` 0 = positive)."""

    pano_path: Path
    city: str
    sat_names: tuple[str, str, str, str]
    deltas: tuple[tuple[float, float], ...]  # four (delta_row, delta_col) at 640 px
    meters_per_pixel_640: float
    tile_index: int = 0

    @property
    def pano_name(self) -> str:
        return self.pano_path.name

    @property
    def sat_name(self) -> str:
        return self.sat_names[self.tile_index]

    @property
    def sat_path(self) -> Path:
        return self.pano_path.parent.parent / "satellite" / self.sat_name

    @property
    def delta(self) -> tuple[float, float]:
        return self.deltas[self.tile_index]


def records_from_lines(
    root: Path, city_lines: list[tuple[str, LabelLine]], include_semi_positives: bool
) -> list[VigorRecord]:
    """Records of (city, label line) pairs, in order; semi-positives with the camera off the tile (|Δ| ≥ 320) are left out."""
    mpp_by_city: dict[str, float] = {}
    records = []
    for city, line in city_lines:
        if city not in mpp_by_city:
            mpp_by_city[city] = city_meters_per_pixel(root, city, parse_sat_name(line.sat_names[0])[0])
        for k in range(4) if include_semi_positives else range(1):
            if k > 0 and max(abs(line.deltas[k][0]), abs(line.deltas[k][1])) >= LABEL_TILE_PX / 2:
                continue
            pano_path = root / city / "panorama" / line.pano_name
            records.append(VigorRecord(pano_path, city, line.sat_names, line.deltas, mpp_by_city[city], k))
    return records


def load_vigor_sample(
    record: VigorRecord, pano_height: int, sat_size: int, index: int = 0, default_camera_height_m: float = 2.0
) -> dict:
    """Read and resize one record's images into a sample dict (``keys.py``); DataError naming a bad file."""
    pano, (width, height) = read_rgb_resized(record.pano_path, (pano_height, 2 * pano_height))
    if abs(width / height - 2.0) > 2.0 * _ASPECT_TOLERANCE:
        raise DataError(f"{record.pano_path}: panorama is {width}x{height}; expected an equirectangular 2:1 image")
    sat, (width, height) = read_rgb_resized(record.sat_path, (sat_size, sat_size))
    if width != height:
        raise DataError(f"{record.sat_path}: satellite tile is {width}x{height}; expected a square tile")
    mpp_fed = record.meters_per_pixel_640 * LABEL_TILE_PX / sat_size
    delta_row, delta_col = record.delta
    uv = torch.as_tensor(
        vigor_delta_to_uv(torch.tensor(delta_row, dtype=torch.float64), torch.tensor(delta_col, dtype=torch.float64), sat_size),
        dtype=torch.float64,
    ).reshape(2)
    xy = torch.as_tensor(uv_to_xy(uv, sat_size, mpp_fed), dtype=torch.float64).reshape(2)
    _, lat, lon = parse_pano_name(record.pano_name)
    sidecar = read_sidecar(record.pano_path)
    return assemble_sample(
        pano=pano,
        sat=sat,
        meters_per_pixel=mpp_fed,
        uv_gt=uv,
        xy_gt=xy,
        latlon_sat=parse_sat_name(record.sat_name),
        latlon_gt=(lat, lon),
        camera_height_m=camera_height_from_sidecar(sidecar, default_camera_height_m),
        city=record.city,
        pano_name=record.pano_name,
        sat_name=record.sat_name,
        index=index,
        sat_file_side=width,
    )


def extra_city_names(root: str | os.PathLike) -> list[str]:
    """City folders of a root other than VIGOR's four (an own area written by ``make-dataset``): sorted names of
    the folders that hold a ``panorama/`` folder."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in CITIES and (p / "panorama").is_dir())


def area_sources(area: str, extra_cities=()) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(training, test) lists of (city, split-file base name) for ``area`` 'same' or 'cross'; same-area also
    covers ``extra_cities`` (cross-area is VIGOR's four cities only)."""
    if area == "same":
        cities = (*CITIES, *extra_cities)
        return ([(city, "same_area_balanced_train") for city in cities], [(city, "same_area_balanced_test") for city in cities])
    if area == "cross":
        return ([(city, "pano_label_balanced") for city in CROSS_TRAIN_CITIES],
                [(city, "pano_label_balanced") for city in CROSS_TEST_CITIES])
    raise ValueError(f"area must be one of {AREAS}, got {area!r}")


def read_split_lines(root: Path, split_dir: Path, sources: list[tuple[str, str]]) -> list[tuple[str, LabelLine]]:
    """(city, label line) pairs of the listed split files; cities absent from the root are skipped with a warning."""
    city_lines, absent = [], []
    for city, base in sources:
        path = find_split_file(split_dir, city, base)
        if path is None:
            if (split_dir / city).is_dir() or (root / city).is_dir():
                raise DataError(f"{split_dir / city}: missing {base}__corrected.txt (or {base}.txt)")
            absent.append(city)
            continue
        city_lines += [(city, line) for line in read_label_file(path)]
    if len(absent) == len(sources):
        raise DataError(f"{root}: none of the cities {', '.join(c for c, _ in sources)} has split files in {split_dir}")
    if absent:
        logger.warning("%s: cities %s are absent; using the others", root, ", ".join(absent))
    return city_lines


class VigorDataset(torch.utils.data.Dataset):
    """VIGOR-layout panoramas with their tiles as ``keys.py`` sample dicts.

    Args:
        root: dataset root (``<City>/panorama``, ``<City>/satellite``, ``splits*/<City>/...``).
        area: 'same' (all cities) or 'cross' (train NewYork + Seattle, test SanFrancisco + Chicago).
        split: 'train' and 'val' (seeded split of the training list, by panorama), 'test', or 'all'.
        pano_height: panorama height fed to the model; width = 2 x height.
        sat_size: satellite side fed to the model.
        include_semi_positives: also make one sample per semi-positive tile (except those whose camera lies
            on or beyond the tile border, |Δ| >= 320).
        val_fraction: share of the training panoramas held out for validation.
        split_seed: seed of the train/validation permutation.
        transform: callable applied to every sample dict.
        skip_bad_images: skip missing or unreadable images with a warning instead of raising DataError.
        default_camera_height_m: camera height when no sidecar gives one.

    Attributes:
        records: list of :class:`VigorRecord`, one per sample.
        line_indices: for train/val, indices into the training list of the panoramas used.
    """

    def __init__(self, root, area: str = "cross", split: str = "train", pano_height: int = 320, sat_size: int = 512,
                 include_semi_positives: bool = False, val_fraction: float = 0.2, split_seed: int = 2023,
                 transform=None, skip_bad_images: bool = False, default_camera_height_m: float = 2.0):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if pano_height < 8 or sat_size < 8:
            raise ValueError(f"pano_height and sat_size must be at least 8 pixels, got {pano_height}, {sat_size}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset root not found (expected a VIGOR-layout folder)")
        self.area, self.split = area, split
        self.pano_height, self.sat_size = pano_height, sat_size
        self.transform, self.skip_bad_images = transform, skip_bad_images
        self.default_camera_height_m = default_camera_height_m
        self.split_dir = find_split_dir(self.root)
        train_sources, test_sources = area_sources(area, extra_city_names(self.root))
        train_lines = read_split_lines(self.root, self.split_dir, train_sources) if split != "test" else []
        self.train_indices, self.val_indices = train_val_indices(len(train_lines), val_fraction, split_seed)
        self.val_fraction, self.split_seed = val_fraction, split_seed
        if split in ("train", "val"):
            self.line_indices = self.train_indices if split == "train" else self.val_indices
            lines = [train_lines[i] for i in self.line_indices]
        else:
            test_lines = read_split_lines(self.root, self.split_dir, test_sources)
            lines = test_lines if split == "test" else train_lines + test_lines
            self.line_indices = list(range(len(lines)))
        self.records = self._existing(records_from_lines(self.root, lines, include_semi_positives))
        self._bad: set[int] = set()
        logger.info("VIGOR %s/%s at %s: %d samples", area, split, self.root, len(self.records))

    def _existing(self, records: list[VigorRecord]) -> list[VigorRecord]:
        listings: dict[Path, set[str]] = {}

        def exists(path: Path) -> bool:
            if path.parent not in listings:
                listings[path.parent] = set(os.listdir(path.parent)) if path.parent.is_dir() else set()
            return path.name in listings[path.parent]

        missing = [(r, p) for r in records for p in (r.pano_path, r.sat_path) if not exists(p)]
        if not missing:
            return records
        examples = ", ".join(str(p) for _, p in missing[:3])
        if not self.skip_bad_images:
            raise DataError(f"{len(missing)} image(s) named in the split files are missing, e.g. {examples}; "
                            f"run `python -m geodistill check-data {self.root}` or set skip_bad_images")
        logger.warning("skipping %d sample(s) with missing images, e.g. %s", len({id(r) for r, _ in missing}), examples)
        bad = {id(r) for r, _ in missing}
        return [r for r in records if id(r) not in bad]

    def __len__(self) -> int:
        return len(self.records)

    def tile_names(self, index: int) -> tuple[str, str, str, str]:
        """The four tile names of sample ``index``'s panorama (for the no-shared-tile batch sampler)."""
        return self.records[index].sat_names

    def tile_sets(self) -> list[tuple[str, str, str, str]]:
        return [record.sat_names for record in self.records]

    def split_state(self) -> dict:
        """The train/validation split (to store with a run): seed, fraction and the training-list indices."""
        return {"area": self.area, "seed": self.split_seed, "val_fraction": self.val_fraction,
                "train": list(self.train_indices), "val": list(self.val_indices)}

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self.records):
            raise IndexError(f"index {index} out of range for {len(self.records)} samples")
        for attempt in range(len(self.records)):
            current = (index + attempt) % len(self.records)
            if current in self._bad:
                continue
            try:
                sample = load_vigor_sample(self.records[current], self.pano_height, self.sat_size, current,
                                           self.default_camera_height_m)
            except DataError as error:
                if not self.skip_bad_images:
                    raise
                logger.warning("skipping sample %d: %s", current, error)
                self._bad.add(current)
                continue
            return self.transform(sample) if self.transform is not None else sample
        raise DataError(f"{self.root}: no readable sample left (every image failed to load)")

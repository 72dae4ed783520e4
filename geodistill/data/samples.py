"""The bundled samples: a small synthetic VIGOR-layout root in ``<assets>/samples`` with ground truth.

Sample names are ``"<City>/<panorama file name without ',.jpg'>"``, e.g. ``"Chicago/p0003,41.87,-87.62"``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from geodistill import keys, settings
from geodistill.data.vigor import (
    CITIES,
    PANO_SUFFIXES,
    VigorRecord,
    find_split_dir,
    find_split_file,
    load_vigor_sample,
    parse_pano_name,
    read_label_file,
    read_sidecar,
    records_from_lines,
)
from geodistill.errors import DataError

logger = logging.getLogger("geodistill.data.samples")



def samples_root() -> Path:
    """The bundled samples' root (``settings.assets_dir()/samples``)."""
    return settings.assets_dir() / "samples"


def sample_name(record: VigorRecord) -> str:
    base = record.pano_name
    suffix = next((s for s in PANO_SUFFIXES if base.lower().endswith(s)), "")
    return f"{record.city}/{base[: len(base) - len(suffix)] if suffix else base}"


def _records(root: Path) -> dict[str, VigorRecord]:
    split_dir = find_split_dir(root)
    cities = [c for c in CITIES if (split_dir / c).is_dir()]
    cities += sorted(p.name for p in split_dir.iterdir() if p.is_dir() and p.name not in CITIES)
    records: dict[str, VigorRecord] = {}
    for city in cities:
        bases = ("pano_label_balanced",)
        if find_split_file(split_dir, city, "pano_label_balanced") is None:
            bases = ("same_area_balanced_train", "same_area_balanced_test")
        for base in bases:
            path = find_split_file(split_dir, city, base)
            if path is None:
                continue
            lines = [(city, line) for line in read_label_file(path)]
            for record in records_from_lines(root, lines, include_semi_positives=False):
                records.setdefault(sample_name(record), record)
    return records


def list_samples(root: str | Path | None = None) -> list[str]:
    """Names of the bundled samples (empty, with a warning, when the samples are not installed)."""
    root = Path(root) if root is not None else samples_root()
    if not root.is_dir():
        logger.warning("no bundled samples at %s", root)
        return []
    return list(_records(root))


def load_sample(name: str, pano_height: int = 320, sat_size: int = 512, root: str | Path | None = None) -> dict:
    """One bundled sample as a ``keys.py`` dict (plus ``"sidecar"`` when the generator wrote one).

    Args:
        name: a name from :func:`list_samples`; the panorama file name or its id also work.
        pano_height: panorama height (width 2x).
        sat_size: tile side.
        root: another VIGOR-layout root to read instead of the bundled one.
    """
    root = Path(root) if root is not None else samples_root()
    if not root.is_dir():
        raise DataError(f"no bundled samples at {root}; reinstall the package's assets or point GEODISTILL_ASSETS at them")
    records = _records(root)
    record = records.get(name)
    if record is None:
        matches = [r for r in records.values() if name in (r.pano_name, _pano_id(r))]
        if len(matches) != 1:
            known = ", ".join(list(records)[:5])
            raise DataError(f"no bundled sample named {name!r}; known samples include {known}")
        record = matches[0]
    index = list(records.values()).index(record)
    sample = load_vigor_sample(record, pano_height, sat_size, index)
    sidecar = read_sidecar(record.pano_path)
    if sidecar is not None:
        sample[keys.SIDECAR] = sidecar
    return sample


def _pano_id(record: VigorRecord) -> str:
    try:
        return parse_pano_name(record.pano_name)[0]
    except DataError:
        return record.pano_name

"""Where a VIGOR-layout dataset's labels come from: surveyed positions, or GPS priors (an own area).

``make-dataset`` writes ``area_dataset.json`` at the root of the datasets it builds from an orthophoto and
geotagged panoramas. Their label offsets are the panoramas' GPS positions, which may be metres off, so an error
measured against them is an error against GPS, not against the truth; ``evaluate`` says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

AREA_DATASET_FILE = "area_dataset.json"
GPS_PRIORS = "gps_priors"


def read_label_source(root: str | os.PathLike) -> dict | None:
    """The ``area_dataset.json`` record of a root (None when there is none or it cannot be read)."""
    path = Path(root) / AREA_DATASET_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def gps_label_warning(root: str | os.PathLike) -> str | None:
    """A one-line warning when the root's labels are GPS priors, else None."""
    record = read_label_source(root)
    if record is None or record.get("labels") != GPS_PRIORS:
        return None
    return (f"{Path(root)}: the labels of this dataset are GPS positions ({AREA_DATASET_FILE}: labels = {GPS_PRIORS}), "
            "not surveyed ground truth; the errors below are measured against GPS, which may itself be metres off")

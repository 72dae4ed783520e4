"""The refine output: one record per panorama, written as GeoJSON or CSV, and the resumable journal behind it.

A record is a flat dict of :data:`FIELDS` (None where a value does not apply). ``write_results(path, records,
meta)`` writes the file the ``--out`` suffix asks for (``.geojson``/``.json``: a FeatureCollection, RFC 7946
lon/lat order, a LineString prior -> refined per refined panorama, a Point at the prior otherwise; ``.csv``: one
row per panorama) atomically (temp file + rename). ``read_results(path)`` reads either back as records.

:class:`Journal` is the sidecar ``<out>.partial.jsonl``: a settings line, then one record per line, appended as
panoramas are done, so an interrupted run loses nothing and a rerun with the same settings skips what is done.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

from geodistill.errors import GeoDistillError

FIELDS = (
    "name", "status", "reason",
    "prior_lat", "prior_lon", "prior_x", "prior_y",
    "refined_lat", "refined_lon", "refined_x", "refined_y",
    "shift_m", "heading_deg", "heading_source", "confidence", "confidence_text", "uncertainty_m",
    "outside_orthophoto", "low_confidence", "coverage", "crs",
)
FLOAT_FIELDS = {"prior_lat", "prior_lon", "prior_x", "prior_y", "refined_lat", "refined_lon", "refined_x",
                "refined_y", "shift_m", "heading_deg", "confidence", "uncertainty_m", "coverage"}
BOOL_FIELDS = {"outside_orthophoto", "low_confidence"}
STATUSES = ("refined", "outside", "skipped")  # localized; GPS outside the orthophoto; not localized (reason)
GEOJSON_SUFFIXES = (".geojson", ".json")
JOURNAL_SUFFIX = ".partial.jsonl"
FORMAT = "geodistill-refine"


class ResultsError(GeoDistillError):
    """An output path or journal that cannot be used."""


def output_format(path: str | os.PathLike) -> str:
    """``geojson`` or ``csv`` from the file name's suffix.

    Raises:
        ResultsError: any other suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix in GEOJSON_SUFFIXES:
        return "geojson"
    if suffix == ".csv":
        return "csv"
    raise ResultsError(f"{path}: the output must end in .geojson (or .json) or .csv")


def journal_path(out_path: str | os.PathLike) -> Path:
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + JOURNAL_SUFFIX)


def empty_record(name: str, status: str, **values) -> dict:
    record = dict.fromkeys(FIELDS)
    record.update(name=name, status=status, outside_orthophoto=False, low_confidence=False, **values)
    return record


def _feature(record: dict) -> dict:
    prior = None if record["prior_lon"] is None else [record["prior_lon"], record["prior_lat"]]
    geometry = None
    if prior is not None and record["refined_lon"] is not None:
        geometry = {"type": "LineString", "coordinates": [prior, [record["refined_lon"], record["refined_lat"]]]}
    elif prior is not None:
        geometry = {"type": "Point", "coordinates": prior}
    return {"type": "Feature", "geometry": geometry, "properties": {key: record[key] for key in FIELDS}}


def _geojson_text(records: list[dict], meta: dict) -> str:
    document = {"type": "FeatureCollection", "features": [_feature(r) for r in records],
                "geodistill": {"format": FORMAT, **meta}}
    return json.dumps(document, indent=1, allow_nan=False)


def _csv_text(records: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: "" if record[key] is None else record[key] for key in FIELDS})
    return buffer.getvalue()


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_results(path: str | os.PathLike, records: list[dict], meta: dict) -> Path:
    """Write the records as GeoJSON or CSV (by suffix), atomically; ``meta`` goes into the GeoJSON only."""
    path = Path(path)
    text = _geojson_text(records, meta) if output_format(path) == "geojson" else _csv_text(records)
    write_text_atomic(path, text)
    return path


def _typed(key: str, text: str):
    if text == "":
        return None
    if key in FLOAT_FIELDS:
        return float(text)
    if key in BOOL_FIELDS:
        return text == "True"
    return text


def read_results(path: str | os.PathLike) -> list[dict]:
    """The records of a refine output file (GeoJSON or CSV), e.g. for a map.

    Raises:
        ResultsError: missing, unreadable or not a refine output.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ResultsError(f"{path}: cannot read the refine output ({error})") from error
    if output_format(path) == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and set(FIELDS) - set(rows[0]):
            raise ResultsError(f"{path}: not a refine output (columns {', '.join(FIELDS)} expected)")
        return [{key: _typed(key, row[key]) for key in FIELDS} for row in rows]
    try:
        document = json.loads(text)
        return [{key: feature["properties"].get(key) for key in FIELDS} for feature in document["features"]]
    except (ValueError, KeyError, TypeError) as error:
        raise ResultsError(f"{path}: not a refine GeoJSON output ({error})") from error


def _finite(record: dict) -> dict:
    """JSON has no NaN: non-finite floats become None."""
    return {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
            for key, value in record.items()}


class Journal:
    """The append-only ``<out>.partial.jsonl`` of a run: its settings, then one record per line."""

    def __init__(self, out_path: str | os.PathLike, settings: dict, restart: bool = False) -> None:
        self.path = journal_path(out_path)
        self.settings = settings
        self.records: dict[str, dict] = {}
        if self.path.exists() and not restart:
            self._load()
        else:
            self._start()

    def _start(self) -> None:
        write_text_atomic(self.path, json.dumps({"settings": self.settings}) + "\n")

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
            lines = text.splitlines()
            header = json.loads(lines[0])["settings"] if lines else None
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            header = None
        if header is None:
            raise ResultsError(f"{self.path}: not a refine journal (damaged?); delete it or pass --restart")
        if header != self.settings:
            changed = sorted(k for k in set(header) | set(self.settings) if header.get(k) != self.settings.get(k))
            raise ResultsError(
                f"{self.path}: an earlier run with other settings ({', '.join(changed)} changed) left this journal; "
                "pass --restart to start over (its results are then discarded), or run with the same settings to "
                "resume it")
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by an interruption: that panorama is simply done again
            if isinstance(record, dict) and "name" in record:
                self.records[record["name"]] = {key: record.get(key) for key in FIELDS}
        if not text.endswith("\n"):
            with open(self.path, "a", encoding="utf-8") as stream:
                stream.write("\n")  # end the cut line, so the next record starts on its own

    def append(self, records: list[dict]) -> None:
        """Add records (flushed to disk before returning)."""
        if not records:
            return
        with open(self.path, "a", encoding="utf-8") as stream:
            for record in records:
                clean = _finite(record)
                stream.write(json.dumps(clean, allow_nan=False) + "\n")
                self.records[record["name"]] = clean
            stream.flush()
            os.fsync(stream.fileno())

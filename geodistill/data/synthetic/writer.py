"""VIGOR layout writer: file names, label lines, split files, metadata and sidecars (atomic writes).

Layout under ``root``::

    <City>/panorama/<panoid>,<lat>,<lon>,.jpg     + <panoid>,<lat>,<lon>,.json (the full label record)
    <City>/satellite/satellite_<lat>_<lon>.png
    <City>/metadata.json                           {"meters_per_pixel", "generator_version", "tier", ...}
    splits__corrected/<City>/satellite_list.txt
    splits__corrected/<City>/pano_label_balanced__corrected.txt
    splits__corrected/<City>/same_area_balanced_{train,test}__corrected.txt
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

SPLIT_DIR = "splits__corrected"
TILE_PX = 640
PANO_JPEG_QUALITY = 90


def pano_file_name(pano_id: str, lat: float, lon: float) -> str:
    """VIGOR panorama name ``<id>,<lat>,<lon>,.jpg`` (8 decimals)."""
    if "," in pano_id:
        raise ValueError(f"panorama id {pano_id!r} must not contain a comma")
    return f"{pano_id},{lat:.8f},{lon:.8f},.jpg"


def tile_file_name(lat: float, lon: float) -> str:
    """VIGOR satellite name ``satellite_<lat>_<lon>.png`` (10 decimals)."""
    return f"satellite_{lat:.10f}_{lon:.10f}.png"


def sidecar_path(pano_path: Path) -> Path:
    """The JSON label record next to a panorama: the panorama name with ``.jpg`` replaced by ``.json``."""
    return pano_path.with_name(pano_path.name[: -len(".jpg")] + ".json")


def delta_from_pixel(col: float, row: float) -> tuple[float, float]:
    """VIGOR (Δrow, Δcol) of a camera at continuous pixel (col, row) of a 640 tile."""
    return row - TILE_PX / 2, TILE_PX / 2 - col


def pixel_from_delta(delta_row: float, delta_col: float, size_px: int = TILE_PX) -> tuple[float, float]:
    """Inverse of :func:`delta_from_pixel` on a tile of ``size_px``: (col, row)."""
    scale = size_px / TILE_PX
    return size_px / 2 - delta_col * scale, size_px / 2 + delta_row * scale


def label_line(pano_name: str, tiles: list[tuple[str, float, float]]) -> str:
    """One 13-token VIGOR label line: the panorama, then (tile, Δrow, Δcol) x 4, positive first."""
    if len(tiles) != 4:
        raise ValueError(f"a VIGOR label line needs 4 tiles, got {len(tiles)}")
    parts = [pano_name]
    for name, delta_row, delta_col in tiles:
        parts += [name, f"{delta_row:.6f}", f"{delta_col:.6f}"]
    return " ".join(parts)


def parse_label_line(line: str) -> tuple[str, list[tuple[str, float, float]]]:
    """Inverse of :func:`label_line` (used by the generator's own tests)."""
    tokens = line.split()
    if len(tokens) != 13:
        raise ValueError(f"expected 13 tokens, got {len(tokens)}: {line!r}")
    return tokens[0], [(tokens[i], float(tokens[i + 1]), float(tokens[i + 2])) for i in (1, 4, 7, 10)]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, record: dict) -> None:
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


def encode_jpeg(image_rgb: np.ndarray, quality: int = PANO_JPEG_QUALITY) -> bytes:
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image_rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def encode_png(image_rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image_rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def write_city_files(root: Path, city: str, records: list[dict], tiles: list[str], metadata: dict) -> None:
    """Split files and metadata of one city from its panorama records (sorted, deterministic)."""
    split = root / SPLIT_DIR / city
    records = sorted(records, key=lambda r: r["pano_name"])
    lines = {r["pano_name"]: r["label_line"] for r in records}
    atomic_write_text(split / "satellite_list.txt", "".join(f"{name}\n" for name in sorted(set(tiles))))
    atomic_write_text(split / "pano_label_balanced__corrected.txt", "".join(f"{lines[r['pano_name']]}\n" for r in records))
    for part in ("train", "test"):
        chosen = [lines[r["pano_name"]] for r in records if r["same_area_split"] == part]
        atomic_write_text(split / f"same_area_balanced_{part}__corrected.txt", "".join(f"{line}\n" for line in chosen))
    write_json(root / city / "metadata.json", metadata)

"""Where GeoDistill keeps its files: assets, checkpoints, datasets and training runs.

Every root defaults to a folder of the repository and can be moved with an environment variable:

| root        | default            | environment variable      |
|-------------|--------------------|---------------------------|
| assets      | ``<repo>/assets``      | ``GEODISTILL_ASSETS``      |
| checkpoints | ``<repo>/checkpoints`` | ``GEODISTILL_CHECKPOINTS`` |
| data        | ``<repo>/data``        | ``GEODISTILL_DATA``        |
| runs        | ``<repo>/runs``        | ``GEODISTILL_RUNS``        |

The variables are read on every call, so tests can point them at temporary folders.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _root(variable: str, default: str) -> Path:
    value = os.environ.get(variable)
    return Path(value).expanduser().resolve() if value else REPO_ROOT / default


def assets_dir() -> Path:
    """Bundled samples and vendored web assets."""
    return _root("GEODISTILL_ASSETS", "assets")


def checkpoints_dir() -> Path:
    """Shipped and exported model checkpoints."""
    return _root("GEODISTILL_CHECKPOINTS", "checkpoints")


def data_dir() -> Path:
    """Generated and downloaded datasets (VIGOR layout)."""
    return _root("GEODISTILL_DATA", "data")


def runs_dir() -> Path:
    """Training runs: config, events.jsonl and checkpoints, one folder per run."""
    return _root("GEODISTILL_RUNS", "runs")


def resolve_path(path: str | os.PathLike | None, root: Path) -> Path | None:
    """Resolve a path from a config: absolute paths stay, relative ones are taken under ``root``.

    A relative path that already exists from the working directory is kept as it is, so a user can
    pass ``./my_data`` on the command line.
    """
    if path is None or str(path) == "":
        return None
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    return root / candidate

"""``events.jsonl``: one JSON object per line, appended as training runs; read by the CLI and the UI.

Every event has ``event`` (its kind), ``time`` (Unix seconds), ``step`` (optimizer steps done) and
``epoch``: the 0-based epoch a ``start``/``step``/``epoch`` event belongs to, and the number of epochs
completed for ``checkpoint``/``done``/``interrupted``/``error``. Kinds and their extra fields:

| event | fields |
|---|---|
| ``start`` | ``name``, ``task``, ``world_size``, ``batch_size``, ``steps_per_epoch``, ``total_steps``, ``n_train``, ``n_val``, ``resumed_from`` |
| ``step`` | ``lr``, ``loss/total``, ``loss/<term>`` (means over the steps since the previous step event and over ranks), ``samples_per_s``, ``eta_s`` |
| ``epoch`` | ``train/loss``, ``val/<metric>`` (``val/mean_m``, ``val/median_m``, ``val/recall_1m`` ...; multi-network tasks ``val/<role>/<metric>``), ``best`` (bool), ``epoch_s`` |
| ``checkpoint`` | ``kind`` (last, best, interrupted), ``path`` |
| ``done`` | ``best_epoch``, ``best_metric``, ``elapsed_s`` |
| ``interrupted`` | ``path`` (the interrupted/ checkpoint) |
| ``error`` | ``message`` |

A resumed run first drops the events after the step it resumes from, then appends a ``start`` event.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("geodistill.engine.events")


def _clean(value: Any) -> Any:
    """JSON has no NaN/Infinity: write them as null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class EventLog:
    """Appends events to a ``events.jsonl`` file (a no-op on non-zero ranks when ``enabled`` is False)."""

    def __init__(self, path: str | Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled

    def write(self, event: str, **fields: Any) -> dict:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as handle:
                handle.write(json.dumps(_clean(record)) + "\n")
        return record


def read_events(path: str | Path) -> list[dict]:
    """All complete events of a file; a partly written last line (a writer still busy) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    events = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            logger.debug("%s:%d: skipping an incomplete line", path, number)
    return events


def truncate_events(path: str | Path, step: int) -> int:
    """Drop the events after ``step`` (those of an interrupted or crashed stretch that a resume
    repeats), atomically. Returns the number of events dropped."""
    path = Path(path)
    events = read_events(path)
    kept = [e for e in events if e.get("step") is None or e["step"] <= step]
    # the final events of the stretch being resumed no longer describe the run
    kept = [e for e in kept if not (e["event"] in ("done", "interrupted", "error") and e.get("step") == step)]
    if len(kept) != len(events):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps(e) + "\n" for e in kept))
        tmp.replace(path)
    return len(events) - len(kept)


class TensorBoardLog:
    """Mirrors scalar events to TensorBoard when the ``tensorboard`` package is installed."""

    def __init__(self, log_dir: str | Path, enabled: bool = True):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.warning(
                "train.tensorboard is on but the 'tensorboard' package is not installed; "
                "continuing with events.jsonl only (pip install tensorboard to get TensorBoard logs)"
            )
            return
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, values: dict[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

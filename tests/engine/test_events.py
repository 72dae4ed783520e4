"""events.jsonl writing, tolerant reading, truncation for resume, optional TensorBoard."""

from __future__ import annotations

import json
import logging

from geodistill.engine.events import EventLog, TensorBoardLog, read_events, truncate_events


def test_write_read_and_nan_as_null(tmp_path):
    log = EventLog(tmp_path / "run" / "events.jsonl")
    log.write("step", step=1, epoch=0, **{"loss/total": float("nan"), "lr": 1e-4})
    log.write("done", step=1, epoch=1)
    lines = (tmp_path / "run" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["step", "done"]
    events = read_events(tmp_path / "run" / "events.jsonl")
    assert events[0]["loss/total"] is None and events[0]["lr"] == 1e-4 and "time" in events[0]


def test_disabled_log_writes_nothing(tmp_path):
    EventLog(tmp_path / "events.jsonl", enabled=False).write("step", step=1)
    assert not (tmp_path / "events.jsonl").exists()


def test_partial_last_line_is_skipped(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "step", "step": 1}\n{"event": "st')
    assert read_events(path) == [{"event": "step", "step": 1}]
    assert read_events(tmp_path / "missing.jsonl") == []


def test_truncate_drops_later_events_and_the_final_one(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    log.write("start", step=0, epoch=0)
    for step in range(1, 6):
        log.write("step", step=step, epoch=0)
    log.write("interrupted", step=5, epoch=0)
    assert truncate_events(tmp_path / "events.jsonl", 3) == 3
    assert [(e["event"], e["step"]) for e in read_events(tmp_path / "events.jsonl")] == [
        ("start", 0), ("step", 1), ("step", 2), ("step", 3)]


def test_tensorboard_missing_is_a_clear_warning(tmp_path, caplog, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with caplog.at_level(logging.WARNING, logger="geodistill.engine.events"):
        board = TensorBoardLog(tmp_path / "tb", enabled=True)
    assert board.writer is None and "pip install tensorboard" in caplog.text
    board.scalars({"loss": 1.0}, 1)
    board.close()

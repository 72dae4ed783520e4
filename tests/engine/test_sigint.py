"""SIGINT in a real process: the first finishes the step and saves interrupted/, a second aborts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geodistill.checkpoint import load_checkpoint
from geodistill.engine.events import read_events

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def start(run_dir: Path, step_s: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
    return subprocess.Popen([sys.executable, str(HERE / "sigint_script.py"), str(run_dir), str(step_s)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_steps(process: subprocess.Popen, run_dir: Path, steps: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"trainer exited early: {process.communicate()}")
        if sum(e["event"] == "step" for e in read_events(run_dir / "events.jsonl")) >= steps:
            return
        time.sleep(0.05)
    process.kill()
    raise AssertionError("trainer made no progress")


@pytest.mark.slow
def test_first_sigint_saves_interrupted_and_exits_cleanly(tmp_path):
    run_dir = tmp_path / "run"
    process = start(run_dir, step_s=0.2)
    try:
        wait_for_steps(process, run_dir, 2)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "status=interrupted" in out and "Traceback" not in err
    checkpoint = load_checkpoint(run_dir / "interrupted", train_state=True)
    events = read_events(run_dir / "events.jsonl")
    assert events[-1]["event"] == "interrupted"
    assert checkpoint.meta["step"] == events[-1]["step"] >= 2
    last_step = max(e["step"] for e in events if e["event"] == "step")
    assert last_step == checkpoint.meta["step"]           # the step in flight was finished and logged


@pytest.mark.slow
def test_second_sigint_aborts(tmp_path):
    run_dir = tmp_path / "run"
    process = start(run_dir, step_s=3.0)   # both signals arrive during one step
    try:
        wait_for_steps(process, run_dir, 1)
        process.send_signal(signal.SIGINT)
        time.sleep(0.1)   # two signals sent at once would be handled once
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode not in (0, 130)
    assert "KeyboardInterrupt" in err
    assert not (run_dir / "interrupted").exists()
    assert read_events(run_dir / "events.jsonl")[-1]["message"] == "aborted by a second interrupt"

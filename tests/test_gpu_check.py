"""training/gpu_check.sh: it stops clearly without CUDA, and its code path runs (on the CPU, tiny sizes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "assets" / "samples"
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")


@no_cuda
def test_the_script_stops_with_a_clear_message_without_cuda(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path)}
    completed = subprocess.run(["bash", str(ROOT / "training" / "gpu_check.sh")], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 3
    assert "needs a CUDA GPU" in completed.stderr and "Nothing was run" in completed.stderr
    assert not (tmp_path / "gpu_check.json").exists()


def test_the_script_names_an_interpreter_without_torch(tmp_path):
    env = {**os.environ, "PYTHON": "/bin/false"}
    completed = subprocess.run(["bash", str(ROOT / "training" / "gpu_check.sh")], env=env, capture_output=True,
                               text=True, timeout=60)
    assert completed.returncode == 4 and "cannot import torch" in completed.stderr


@no_cuda
def test_the_python_check_refuses_to_run_without_cuda(tmp_path):
    completed = subprocess.run([sys.executable, str(ROOT / "training" / "gpu_check.py"), "--data", str(SAMPLES)],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 3 and "needs a CUDA GPU" in completed.stderr


def test_smoke_run_trains_measures_and_writes_the_figures(tmp_path):
    report = tmp_path / "gpu_check.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "training" / "gpu_check.py"), "--smoke", "--data", str(SAMPLES), "--steps", "2",
         "--warmup", "1", "--batch-size", "4", "--inference-repeats", "1", "--json", str(report)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    figures = json.loads(report.read_text())
    weak = figures["g2sweakly"]
    assert weak["train"]["steps"] == 2 and weak["train"]["steps_per_s"] > 0 and weak["inference"]["pairs_per_s"] > 0
    assert figures["ccvpe"]["train"]["steps"] == 2 and figures["ccvpe"]["inference"]["pairs_per_s"] > 0
    assert figures["correlation"]["max_abs_diff"] < 1e-4
    assert "skipped" in figures["torchrun"]
    assert "steps/s" in completed.stdout and "pairs/s" in completed.stdout and "every part ran" in completed.stdout

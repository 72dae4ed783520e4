"""Two CPU processes on the gloo backend (torchrun): identical weights on both ranks, disjoint batches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from geodistill.checkpoint import load_checkpoint
from geodistill.engine.events import read_events

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def run_two_ranks(tmp_path: Path, *args: str) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(HERE / "ddp_script.py"), str(tmp_path / "run"), str(tmp_path), *args]
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-4000:]
    return [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in range(2)]


def assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.slow
def test_two_gloo_ranks_hold_identical_weights(tmp_path):
    ranks = run_two_ranks(tmp_path, "toy")
    assert [r["status"] for r in ranks] == ["done", "done"] and [r["step"] for r in ranks] == [4, 4]
    assert_identical(ranks[0]["weights"], ranks[1]["weights"])          # parameters and BatchNorm buffers
    seen = [{i for batch in r["indices"] for i in batch} for r in ranks]
    assert len(ranks[0]["indices"]) == len(ranks[1]["indices"]) == 4    # equal batch counts
    first_epoch = [{i for batch in r["indices"][:2] for i in batch} for r in ranks]
    assert not first_epoch[0] & first_epoch[1] and seen[0] != seen[1]    # each rank its own samples
    saved = load_checkpoint(tmp_path / "run" / "last").state_dicts["model"]
    assert_identical(saved, ranks[0]["weights"])                         # rank 0 saved
    events = read_events(tmp_path / "run" / "events.jsonl")
    assert events[0]["world_size"] == 2 and sum(e["event"] == "start" for e in events) == 1

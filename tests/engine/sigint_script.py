"""Run by test_sigint.py in a subprocess: a toy training whose steps are slow enough to interrupt."""

from __future__ import annotations

import sys
import time

import torch
from engine_toy import ToyTask, toy_config

from geodistill.engine.loop import train


class SlowToyTask(ToyTask):
    step_s = 0.2

    def train_step(self, batch):
        time.sleep(self.step_s)
        return super().train_step(batch)


if __name__ == "__main__":
    torch.set_num_threads(1)
    SlowToyTask.step_s = float(sys.argv[2])
    result = train(toy_config(epochs=50), run_dir=sys.argv[1], task_cls=SlowToyTask)
    print(f"status={result.status} step={result.step}", flush=True)
    sys.exit(130 if result.status == "interrupted" else 0)

"""Run by test_distributed.py under ``torchrun --nproc_per_node 2``: a few steps, then each rank dumps its weights."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from engine_toy import ToyTask, toy_config

from geodistill.config import load_config
from geodistill.engine.loop import Trainer

if __name__ == "__main__":
    torch.set_num_threads(1)
    run_dir, out_dir, kind = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    if kind == "toy":
        trainer = Trainer(toy_config(epochs=2, max_steps_per_epoch=2, batch_size=4), run_dir=run_dir, task_cls=ToyTask)
    else:
        trainer = Trainer(load_config(kind, sys.argv[4:]), run_dir=run_dir)
    rank = int(os.environ["RANK"])
    seen = []
    original = trainer.task.train_step

    def recording_step(batch):
        seen.append([int(i) for i in batch["index"]])
        return original(batch)

    trainer.task.train_step = recording_step
    result = trainer.train()
    state = {name: tensor.clone() for name, tensor in trainer.task.state_dicts()["model"].items()}
    torch.save({"weights": state, "indices": seen, "status": result.status, "step": result.step},
               out_dir / f"rank{rank}.pt")

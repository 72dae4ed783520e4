"""Run by test_distributed.py under ``torchrun --nproc_per_node 2``: a few steps, then each rank dumps the weights of every
network (``<network>/<tensor name>``).

Usage: ``ddp_script.py RUN_DIR OUT_DIR KIND [overrides ...]``. ``KIND`` is ``toy`` (the toy task), ``toy-no-ddp``
(the toy task with the DistributedDataParallel wrapper replaced by the bare module: the negative control,
gradients are no longer averaged) or a recipe path followed by ``key=value`` overrides.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from engine_toy import ToyTask, toy_config
from torch.nn.parallel import DistributedDataParallel

from geodistill.config import load_config
from geodistill.engine import distributed as dist_utils
from geodistill.engine.loop import Trainer

if __name__ == "__main__":
    torch.set_num_threads(1)
    run_dir, out_dir, kind = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    if kind == "toy-no-ddp":
        dist_utils.wrap_for_training = lambda module, ctx, find_unused_parameters=False: module
    if kind.startswith("toy"):
        # gathered negatives: the sampler draws a global no-shared-tile batch and splits it across the ranks
        trainer = Trainer(toy_config(epochs=2, max_steps_per_epoch=2, batch_size=4, gather_negatives=True),
                          run_dir=run_dir, task_cls=ToyTask)
    else:
        trainer = Trainer(load_config(kind, sys.argv[4:]), run_dir=run_dir)
    rank = int(os.environ["RANK"])
    wrapped = isinstance(trainer.step_module, DistributedDataParallel)
    in_step_module = {id(p) for p in trainer.step_module.parameters()}
    covered = all(id(p) in in_step_module for p in trainer.task.trainable_parameters())
    seen = []
    original = trainer.task.train_step

    def recording_step(batch):
        seen.append([int(i) for i in batch["index"]])
        return original(batch)

    trainer.task.train_step = recording_step
    result = trainer.train()
    state = {f"{net}/{name}": tensor.clone() for net, tensors in trainer.task.state_dicts().items()
             for name, tensor in tensors.items()}
    torch.save({"weights": state, "indices": seen, "status": result.status, "step": result.step, "ddp": wrapped,
                "trainable_in_ddp": covered}, out_dir / f"rank{rank}.pt")

"""The Task interface: what the training loop needs to know about one kind of training.

The loop (:mod:`geodistill.engine.loop`) is task-agnostic. A task owns its networks, computes losses and
validates; the loop owns the optimizer, schedules, ``DistributedDataParallel``, events, checkpoints,
SIGINT and resume. To add a task, subclass :class:`Task`, implement the four abstract members and register the
class in :data:`geodistill.engine.tasks.TASKS` under its ``TrainConfig.task`` name:

```python
class MyTask(Task):
    name = "mytask"                      # TrainConfig.task value; checkpoint meta "task"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)    # sets self.config, self.ctx, self.device, self.generator
        self.net = build(config).to(self.device)   # the loop seeds torch before __init__

    def networks(self):                  # name -> nn.Module; names are checkpoint prefixes:
        return {"model": self.net}       #   "model", or "teacher" and "student"

    def trainable_parameters(self):      # what AdamW optimizes (and DDP averages)
        return [p for p in self.net.parameters() if p.requires_grad]

    def train_step(self, batch):         # batch already on self.device; networks in train mode
        return {"total": loss_per_sample, "0": level0_per_sample}   # (B,) tensors or scalars

    def validate(self, loader):          # networks in eval mode, under torch.no_grad()
        return summarize_position_errors(errors_m)  # geodistill.metrics: {"n", "mean_m", "median_m", "recall_1m", ...}
```

Before the first step the loop sets ``task.run_dir`` (the run folder on rank 0, None elsewhere; for a
task that saves extra checkpoints such as ``best_<role>/``) and ``task.total_steps`` (the run length,
for step-indexed schedules).

**Distributed training.** The loop never calls ``train_step`` directly: it calls a
:class:`TrainStep` module (``task.train_step_module()``) whose ``forward(batch)`` is ``task.train_step(batch)``
and which registers the networks being trained (``trained_networks()``: by default every network with a
trainable parameter). Under ``torchrun`` that module is wrapped in ``DistributedDataParallel``, so
``train_step`` may call any method of its networks (``all_pairs_distance``, a pipeline's student path),
not only ``forward``: DDP averages the gradients of the trainable parameters whatever path produced the
loss. Networks that are not trained (an EMA teacher, ``requires_grad=False`` throughout) stay outside DDP
and must evolve identically on every rank (they do when they follow the synchronised student). Every
trainable parameter must get a gradient in every step; a task where some do not sets
``find_unused_parameters = True``.

Optional overrides: ``checkpoint_meta()`` (role/deploy); ``selection_metric`` (the lower-is-better
validation key that picks ``best/``; multi-network tasks use per-role keys such as ``"student/mean_m"``);
``on_step_end(step, epoch)`` and ``on_epoch_end(epoch)`` (for example the EMA teacher update);
``set_train_mode()`` (which networks train); ``extra_state()``/``load_extra_state()`` (task state to
resume exactly, tensors/dicts/lists/numbers only; the base class saves ``self.generator``); and
``build_datasets(config, ctx)`` (a task whose data differ from the localisation pairs of
:mod:`geodistill.engine.data`).

Randomness inside a task must come from ``self.generator`` (seeded from ``train.seed`` and the rank), so
that a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from geodistill import settings
from geodistill.checkpoint import load_state_dict_checked, resolve_checkpoint
from geodistill.config import ExperimentConfig
from geodistill.engine.data import build_datasets
from geodistill.engine.distributed import DistContext
from geodistill.errors import CheckpointError, GeoDistillError


def batch_to_device(batch: dict, device: torch.device) -> dict:
    """Move the tensors of a batch dict to ``device`` (strings and lists stay)."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def resolve_init_checkpoint(name: str, setting: str = "distill.init_checkpoint") -> Path:
    """The checkpoint folder named by an ``init_checkpoint`` setting (``setting`` names it in messages).

    Absolute paths and paths that exist from the working directory are taken as they are; other relative
    names are looked up under ``settings.runs_dir()`` and then ``settings.checkpoints_dir()``. A run
    folder means its ``best/``.
    """
    if not name:
        raise CheckpointError(
            f"{setting} is empty: GeoDistill starts from a weak baseline. Train one first (for example "
            "'python -m geodistill train --config training/configs/tiny.yaml') and pass its run folder with "
            f"{setting}=<run name or path>"
        )
    candidates = [settings.resolve_path(name, settings.runs_dir()), settings.resolve_path(name, settings.checkpoints_dir())]
    for candidate in candidates:
        if candidate is not None and candidate.exists():
            return resolve_checkpoint(candidate)
    tried = ", ".join(str(c) for c in candidates if c is not None)
    raise CheckpointError(f"{setting}={name!r}: no such checkpoint or run folder (looked at {tried})")


class TrainStep(nn.Module):
    """The module the loop runs (and wraps in ``DistributedDataParallel``): ``forward(batch)`` is
    ``task.train_step(batch)``.

    It registers the trained networks as submodules (``trained.<name>``), so that DDP sees their
    parameters and buffers; the task is a plain attribute, not a submodule.

    Args:
        task: the task whose ``train_step`` computes the losses.
        networks: name -> trained network (the same objects the task uses).
    """

    def __init__(self, task: "Task", networks: dict[str, nn.Module]):
        super().__init__()
        self.trained = nn.ModuleDict(networks)
        self.task = task

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """Per-sample (B,) losses (or scalars) of ``batch``, ``"total"`` included."""
        return self.task.train_step(batch)


class Task:
    """Base class of trainable tasks; see the module docstring for the contract."""

    name = "task"
    selection_metric = "mean_m"
    find_unused_parameters = False  # DDP: some trainable parameters may get no gradient in a step

    def __init__(self, config: ExperimentConfig, ctx: DistContext):
        self.config = config
        self.ctx = ctx
        self.device = ctx.device
        self.generator = torch.Generator().manual_seed(config.train.seed * 1000 + ctx.rank)
        self.run_dir: Path | None = None      # set by the loop before the first step
        self.total_steps: int | None = None   # optimizer steps of the whole run, set by the loop

    def networks(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        raise NotImplementedError

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """Losses of one batch: per-sample (B,) terms (or scalars) plus ``"total"``; the loop averages."""
        raise NotImplementedError

    def trained_networks(self) -> dict[str, nn.Module]:
        """The networks that ``train_step`` trains (registered in :class:`TrainStep`, hence in DDP);
        default: every network holding a parameter with ``requires_grad``."""
        return {name: net for name, net in self.networks().items() if any(p.requires_grad for p in net.parameters())}

    def train_step_module(self) -> TrainStep:
        """The :class:`TrainStep` of this task; checks that it holds every trainable parameter."""
        step = TrainStep(self, self.trained_networks())
        held = {id(p) for p in step.parameters()}
        outside = sum(1 for p in self.trainable_parameters() if id(p) not in held)
        if outside:
            raise GeoDistillError(
                f"task {self.name!r}: {outside} trainable parameter tensor(s) belong to none of its trained networks "
                f"({', '.join(step.trained) or 'none'}); DDP would not average their gradients. "
                "Return their network from trained_networks()"
            )
        return step

    def validate(self, loader) -> dict[str, float]:
        """Metrics over a validation loader (called on rank 0 only, in eval mode, under no_grad)."""
        raise NotImplementedError

    @classmethod
    def build_datasets(cls, config: ExperimentConfig, ctx: DistContext):
        """(train, val) datasets; the default is the localisation pairs of :mod:`geodistill.engine.data`."""
        return build_datasets(config, ctx)

    def checkpoint_meta(self) -> dict[str, Any]:
        """``task`` and ``role`` (and ``deploy`` for distillation) of the checkpoint's ``config.json``."""
        return {"task": self.name, "role": self.name}

    def set_train_mode(self) -> None:
        for net in self.networks().values():
            net.train()

    def set_eval_mode(self) -> None:
        for net in self.networks().values():
            net.eval()

    def on_step_end(self, step: int, epoch: int) -> None:
        """After each optimizer step (``step`` = steps done)."""

    def on_epoch_end(self, epoch: int) -> None:
        """After the last step of ``epoch`` and before its validation."""

    def state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        return {name: net.state_dict() for name, net in self.networks().items()}

    def load_state_dicts(self, state_dicts: dict[str, dict[str, torch.Tensor]], source: str = "checkpoint") -> None:
        networks = self.networks()
        missing = sorted(set(networks) - set(state_dicts))
        if missing:
            held = ", ".join(sorted(state_dicts))
            raise CheckpointError(f"{source}: no weights for {', '.join(missing)} (it holds {held})")
        for name, net in networks.items():
            load_state_dict_checked(net, state_dicts[name], source)

    def extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_extra_state(self, state: dict) -> None:
        if "generator" in state:
            self.generator.set_state(state["generator"])

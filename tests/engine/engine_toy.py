"""A tiny task and dataset for testing the training loop without the real models or data."""

from __future__ import annotations

import os
import signal

import torch

from geodistill import keys
from geodistill.config import ExperimentConfig, config_from_dict
from geodistill.engine.tasks.base import Task, batch_to_device
from geodistill.metrics import summarize_position_errors


class ToyDataset(torch.utils.data.Dataset):
    """``n`` samples of a noisy linear relation; every third pair of samples shares a 'tile'."""

    def __init__(self, n: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=generator)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=generator)

    def __len__(self) -> int:
        return len(self.x)

    def tile_names(self, index: int) -> tuple[str, ...]:
        return (f"tile-{index // 2}", f"own-{index}")

    def __getitem__(self, index: int) -> dict:
        return {"x": self.x[index], "y": self.y[index], keys.INDEX: index}


class ToyTask(Task):
    """A two-layer MLP with BatchNorm (buffers) and generator noise (task RNG state)."""

    name = "weak"
    stop_at_step = 0        # send ourselves SIGINT after this step (0 = never)
    nan_at_step = 0         # return a NaN loss at this step (0 = never)

    def __init__(self, config: ExperimentConfig, ctx):
        super().__init__(config, ctx)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
        ).to(self.device)
        self.steps_seen = 0

    @classmethod
    def build_datasets(cls, config, ctx):
        return ToyDataset(48, seed=1), ToyDataset(12, seed=2)

    def networks(self):
        return {"model": self.net}

    def trainable_parameters(self):
        return list(self.net.parameters())

    def train_step(self, batch):
        self.steps_seen += 1
        noise = 0.01 * torch.randn(batch["x"].shape, generator=self.generator)
        prediction = self.net(batch["x"] + noise).squeeze(-1)
        squared = (prediction - batch["y"]) ** 2
        if self.nan_at_step and self.steps_seen == self.nan_at_step:
            squared = squared * float("nan")
        return {"total": squared, "mse": squared, "l1": (prediction - batch["y"]).abs()}

    def on_step_end(self, step, epoch):
        if self.stop_at_step and step == self.stop_at_step:
            os.kill(os.getpid(), signal.SIGINT)

    def validate(self, loader):
        errors = []
        for batch in loader:
            batch = batch_to_device(batch, self.device)
            errors.append((self.net(batch["x"]).squeeze(-1) - batch["y"]).abs())
        return summarize_position_errors(torch.cat(errors))


def toy_config(**train) -> ExperimentConfig:
    """A config for the toy task: 3 epochs of 6 steps (48 samples, batch 8), log every step."""
    settings = {"epochs": 3, "batch_size": 8, "log_every": 1, "seed": 7, "device": "cpu", **train}
    return config_from_dict({"name": "toy", "optim": {"lr": 1e-2, "warmup_steps": 2}, "train": settings})


class StopAtEightToyTask(ToyTask):
    """Interrupts itself (SIGINT) after step 8, in the middle of epoch 2."""

    stop_at_step = 8

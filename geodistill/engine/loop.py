"""The training loop shared by every task: ``train(config, run_dir, resume, force) -> TrainResult``.

Per step: forward and per-sample losses (the task's :class:`~geodistill.engine.tasks.base.TrainStep`, in
``DistributedDataParallel`` under torchrun), mean, non-finite check, backward (DDP averages the gradients
over ranks), global-norm clipping, AdamW step with the scheduled learning rate, buffer broadcast from rank
0, task hook, step event. Per epoch: task hook, validation on the val split (rank 0), ``last/`` and, when the selection metric
improves, ``best/``. Selection uses ground-truth positions of the validation split (method.md §1): it
leaks fine labels into a weakly supervised pipeline, kept for comparability with the paper;
``train.select_by=last`` avoids it.

Ctrl+C (SIGINT): the first signal lets the current step finish, saves ``interrupted/`` and returns with
status ``"interrupted"``; a second one aborts at once. The job manager's cancel file
(``$GEODISTILL_CANCEL_FILE``) acts as a first Ctrl+C, and is honoured even when it was written during the setup. ``resume=True`` continues from the newer of
``interrupted/`` and ``last/`` and repeats an uninterrupted run exactly (same batches, losses, weights).
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from geodistill.checkpoint import load_checkpoint, save_checkpoint
from geodistill.config import ExperimentConfig
from geodistill.engine import distributed as dist_utils
from geodistill.engine.data import build_train_loader, build_val_loader, set_loader_epoch
from geodistill.engine.events import EventLog, TensorBoardLog, truncate_events
from geodistill.engine.rundir import CANCEL_FILE_ENV, RunDir, default_run_dir
from geodistill.engine.schedules import lr_schedule
from geodistill.engine.tasks import task_class
from geodistill.engine.tasks.base import Task, batch_to_device
from geodistill.errors import CheckpointError, DataError, GeoDistillError

logger = logging.getLogger("geodistill.engine.loop")


class TrainingError(GeoDistillError):
    """Training cannot go on (for example a non-finite loss)."""


@dataclass
class TrainResult:
    """How a run ended: ``status`` is ``"done"`` or ``"interrupted"``."""

    run_dir: Path
    status: str
    step: int
    epoch: int
    best_epoch: int | None
    best_metric: float | None


class StopRequest:
    """The stop policy. SIGINT: the first signal asks the loop to stop after the current step, a second aborts.
    A cancel file (the job manager's, named by ``$GEODISTILL_CANCEL_FILE``) asks the same as a first SIGINT; it is
    polled before the first step and after every step, so a cancel that arrives while the trainer is still
    setting up (generating data, loading models) is honoured as soon as it can be, never lost."""

    def __init__(self, cancel_file: str | Path | None = None):
        self.signalled = False
        self.cancel_file = Path(cancel_file) if cancel_file else None
        self._previous = None

    @classmethod
    def from_environment(cls) -> "StopRequest":
        return cls(os.environ.get(CANCEL_FILE_ENV) or None)

    @property
    def requested(self) -> bool:
        return self.signalled or (self.cancel_file is not None and self.cancel_file.exists())

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame):
        if self.signalled:
            raise KeyboardInterrupt
        self.signalled = True
        logger.warning("interrupt received: finishing the current step, then saving interrupted/ (Ctrl+C again aborts)")


def capture_rng_state() -> dict:
    """Global RNG states as tensors and lists (loadable with ``weights_only=True``)."""
    version, mt_state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": [version, list(mt_state), gauss],
        "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, mt_state, gauss = state["python"]
    random.setstate((version, tuple(mt_state), gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """One run of one task: construction prepares the run folder, task, data and optimizer; :meth:`train` runs it."""

    def __init__(self, config: ExperimentConfig, run_dir: str | Path | None = None, resume: bool = False,
                 force: bool = False, task_cls: type[Task] | None = None):
        self.config = config
        self.ctx = dist_utils.init_distributed(config.train.device)
        self.run = RunDir(run_dir or default_run_dir(config))
        self.resume_from = None
        if resume:
            self.resume_from = self.run.newest_checkpoint()
            self.run.check_resume_config(config, force, write=self.ctx.is_main)
        else:
            self.run.prepare_new(config, force, write=self.ctx.is_main)
        dist_utils.barrier(self.ctx)
        self.events = EventLog(self.run.events_path, enabled=self.ctx.is_main)
        self.tensorboard = TensorBoardLog(self.run.tensorboard_dir,
                                          enabled=config.train.tensorboard and self.ctx.is_main)
        task_cls = task_cls or task_class(config.train.task)
        seed_everything(config.train.seed)
        self.task = task_cls(config, self.ctx)
        self.trainable = list(self.task.trainable_parameters())
        if not self.trainable:
            raise TrainingError(f"task {config.train.task!r} has no trainable parameters")
        self.step_module = dist_utils.wrap_for_training(self.task.train_step_module(), self.ctx,
                                                        find_unused_parameters=self.task.find_unused_parameters)
        self._sync_untrained_from_rank0()
        self._checked_gradients = False
        train_set, val_set = task_cls.build_datasets(config, self.ctx)
        self.train_loader = build_train_loader(train_set, config, self.ctx)
        self.val_loader = build_val_loader(val_set, config, self.ctx) if len(val_set) else None
        if self.val_loader is None and config.train.select_by == "val_mean":
            raise DataError("the validation split is empty; add data, raise data.val_fraction "
                            "or set train.select_by=last")
        self.n_train, self.n_val = len(train_set), len(val_set)
        self.epoch_lengths = self.train_loader.batch_sampler.epoch_lengths(config.train.epochs)
        self.total_steps = sum(self.epoch_lengths)
        self.lrs = lr_schedule(config.optim, max(self.total_steps, 1))
        self.task.run_dir = self.run.path if self.ctx.is_main else None  # for extra checkpoints (distill: best_<role>/)
        self.task.total_steps = self.total_steps  # for task-side step schedules (distill: EMA momentum)
        self.optimizer = torch.optim.AdamW(self.trainable, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.epoch_losses: list[float] = []
        self.stop = StopRequest.from_environment()
        self.stopping = False

    def _sync_untrained_from_rank0(self) -> None:
        """Broadcast the networks outside DDP (for example an EMA teacher); DDP synchronised the others."""
        if not self.ctx.enabled:
            return
        in_ddp = {id(t) for t in list(self.step_module.parameters()) + list(self.step_module.buffers())}
        tensors = {id(t): t for net in self.task.networks().values()
                   for t in list(net.parameters()) + list(net.buffers()) if id(t) not in in_ddp}
        dist_utils.broadcast_tensors(tensors.values(), self.ctx)

    def _check_every_parameter_got_a_gradient(self) -> None:
        """DDP without ``find_unused_parameters`` would stall the next step on a trainable parameter that got no
        gradient, with an obscure error; name it instead (checked after the first backward pass)."""
        self._checked_gradients = True
        if not self.ctx.enabled or self.task.find_unused_parameters:
            return
        unused = dist_utils.parameters_without_gradient(self.step_module)
        if unused:
            raise TrainingError(f"task {self.task.name!r}: trainable parameters without a gradient ({', '.join(unused)}); "
                                "set find_unused_parameters = True on the task class for DistributedDataParallel")

    def _restore(self) -> None:
        ckpt = load_checkpoint(self.resume_from, train_state=True)
        self.task.load_state_dicts(ckpt.state_dicts, source=str(self.resume_from))
        state = ckpt.train_state
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.best_metric, self.best_epoch = state.get("best_metric"), state.get("best_epoch")
        self.epoch_losses = list(state.get("epoch_losses", []))
        rank_states = state["rng"]
        restore_rng_state(rank_states[self.ctx.rank] if self.ctx.rank < len(rank_states) else rank_states[0])
        self.task.load_extra_state(state["task"][self.ctx.rank] if self.ctx.rank < len(state["task"]) else {})
        sampler = self.train_loader.batch_sampler.batch_sampler
        if state.get("sampler") and hasattr(sampler, "load_state_dict"):
            try:  # restores (and checks) the epoch's batching; EpochBatches skips the batches already done
                sampler.load_state_dict({**state["sampler"], "position": 0})
            except ValueError as error:
                raise CheckpointError(
                    f"{self.resume_from}: the training data changed since this run started ({error})") from error
        if self.ctx.is_main:
            dropped = truncate_events(self.run.events_path, self.step)
            logger.info("resuming %s at epoch %d, step %d (dropped %d later events)",
                        self.resume_from, self.epoch + 1, self.step, dropped)

    def _gather_per_rank(self, value: dict) -> list[dict]:
        if not self.ctx.enabled:
            return [value]
        gathered: list = [None] * self.ctx.world_size
        torch.distributed.all_gather_object(gathered, value)
        return gathered

    def _save(self, kind: str, metrics: dict) -> None:
        """Write a run checkpoint (collective: every rank calls it, rank 0 writes)."""
        rng = self._gather_per_rank(capture_rng_state())
        task_state = self._gather_per_rank(self.task.extra_state())
        if not self.ctx.is_main:
            return
        train_state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"kind": self.config.optim.schedule, "step": self.step, "total_steps": self.total_steps},
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "best_metric": self.best_metric, "best_epoch": self.best_epoch,
            "rng": rng, "task": task_state, "epoch_losses": list(self.epoch_losses),
            "sampler": self._sampler_state(),
        }
        meta = {**self.task.checkpoint_meta(), "metrics": metrics, "epoch": self.epoch, "step": self.step,
                "batch_in_epoch": self.batch_in_epoch, "kind": kind}
        path = save_checkpoint(self.run.checkpoint(kind), self.config, self.task.state_dicts(), meta, train_state)
        self.events.write("checkpoint", step=self.step, epoch=self.epoch, kind=kind, path=str(path))

    def _agree_to_stop(self) -> bool:
        """Whether any rank got an interrupt; every rank must decide alike at the same point."""
        if not self.ctx.enabled:
            return self.stop.requested
        return bool(dist_utils.all_reduce_sum(torch.tensor([float(self.stop.requested)]), self.ctx)[0] > 0)

    def _sampler_state(self) -> dict:
        sampler = self.train_loader.batch_sampler.batch_sampler
        if not hasattr(sampler, "state_dict"):
            return {}
        try:  # the loader prefetches, so the sampler's own position may run ahead of the steps done
            return sampler.state_dict(consumed_batches=self.batch_in_epoch)
        except TypeError:
            return sampler.state_dict()

    def _train_step(self, batch: dict) -> dict[str, float]:
        lr = float(self.lrs[min(self.step, len(self.lrs) - 1)])
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        losses = {k: v.float().mean() for k, v in self.step_module(batch_to_device(batch, self.ctx.device)).items()}
        total = losses["total"]
        nonfinite = dist_utils.all_reduce_sum(torch.tensor([0.0 if torch.isfinite(total) else 1.0]), self.ctx)
        if nonfinite[0] > 0:
            values = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
            raise TrainingError(
                f"non-finite loss at epoch {self.epoch + 1}, step {self.step + 1} ({values}); stopping. "
                f"Try a lower optim.lr (now {self.config.optim.lr:g}) or gradient clipping (optim.clip_grad_norm)"
            )
        total.backward()  # under DDP this also averages the gradients over ranks
        if not self._checked_gradients:
            self._check_every_parameter_got_a_gradient()
        if self.config.optim.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.config.optim.clip_grad_norm)
        self.optimizer.step()
        dist_utils.sync_buffers(self.step_module, self.ctx)  # BatchNorm statistics: rank 0's, before the hooks
        self.step += 1
        self.batch_in_epoch += 1
        self.task.on_step_end(self.step, self.epoch)
        self.stopping = self._agree_to_stop()
        return {"lr": lr, **{f"loss/{k}": v.item() for k, v in losses.items()}}

    def _log_window(self, window: list[dict], window_start: float, session_start: tuple[float, int]) -> None:
        means = {k: sum(w[k] for w in window) / len(window) for k in window[0] if k != "lr"}
        if self.ctx.enabled:
            names = sorted(means)
            summed = dist_utils.all_reduce_sum(torch.tensor([means[k] for k in names], dtype=torch.float64), self.ctx)
            means = {k: float(v) / self.ctx.world_size for k, v in zip(names, summed)}
        now = time.monotonic()
        samples = len(window) * self.config.train.batch_size * self.ctx.world_size
        seconds_per_step = (now - session_start[0]) / max(self.step - session_start[1], 1)
        record = {"lr": window[-1]["lr"], **means, "samples_per_s": samples / max(now - window_start, 1e-9),
                  "eta_s": seconds_per_step * (self.total_steps - self.step)}
        self.events.write("step", step=self.step, epoch=self.epoch, **record)
        self.tensorboard.scalars({k: v for k, v in record.items() if k != "eta_s"}, self.step)

    def _train_epoch(self, session_start: tuple[float, int]) -> None:
        set_loader_epoch(self.train_loader, self.epoch, self.batch_in_epoch)
        self.task.set_train_mode()
        bar = tqdm(total=self.epoch_lengths[self.epoch], initial=self.batch_in_epoch,
                   desc=f"epoch {self.epoch + 1}/{self.config.train.epochs}",
                   disable=not self.ctx.is_main, dynamic_ncols=True, leave=False,
                   mininterval=0.1 if sys.stderr.isatty() else 10.0)  # a log file needs no 10 updates/s
        window, window_start = [], time.monotonic()
        with bar:
            for batch in self.train_loader:
                logs = self._train_step(batch)
                window.append(logs)
                self.epoch_losses.append(logs["loss/total"])
                bar.update(1)
                bar.set_postfix(loss=f"{logs['loss/total']:.4f}", lr=f"{logs['lr']:.2e}")
                end_of_epoch = self.batch_in_epoch >= self.epoch_lengths[self.epoch]
                if len(window) >= self.config.train.log_every or end_of_epoch or self.stopping:
                    self._log_window(window, window_start, session_start)
                    window, window_start = [], time.monotonic()
                if self.stopping and not end_of_epoch:
                    return

    def _validate(self) -> dict[str, float]:
        if self.val_loader is None or not self.ctx.is_main:
            return {}
        self.task.set_eval_mode()
        with torch.no_grad():
            metrics = self.task.validate(self.val_loader)
        self.task.set_train_mode()
        return metrics

    def _end_epoch(self, epoch_start: float) -> None:
        self.task.on_epoch_end(self.epoch)
        metrics = self._validate()
        key = self.task.selection_metric
        improved = False
        if self.ctx.is_main:
            if self.config.train.select_by == "last":
                improved = True
            else:
                value = metrics.get(key, float("nan"))
                improved = math.isfinite(value) and (self.best_metric is None or value < self.best_metric)
                if improved:
                    self.best_metric = float(value)
        improved = bool(self._gather_per_rank(improved)[0])
        if improved:
            self.best_epoch = self.epoch
        counts = torch.tensor([sum(self.epoch_losses), len(self.epoch_losses)], dtype=torch.float64)
        loss_sum = dist_utils.all_reduce_sum(counts, self.ctx)
        train_loss = float(loss_sum[0] / loss_sum[1]) if loss_sum[1] > 0 else float("nan")
        self.events.write("epoch", step=self.step, epoch=self.epoch, **{"train/loss": train_loss},
                          **{f"val/{k}": v for k, v in metrics.items()}, best=improved,
                          epoch_s=time.monotonic() - epoch_start)
        self.tensorboard.scalars({f"val/{k}": v for k, v in metrics.items()}, self.step)
        if self.ctx.is_main:
            logger.info("epoch %d/%d: train loss %.4f, %s", self.epoch + 1, self.config.train.epochs, train_loss,
                        ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float)) or "no validation")
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_losses = []
        self._save("last", metrics)
        if improved:
            self._save("best", metrics)

    def train(self) -> TrainResult:
        """Run (or continue) the training; returns how it ended."""
        with self.stop:
            try:
                return self._run()
            except BaseException as error:
                message = "aborted by a second interrupt" if isinstance(error, KeyboardInterrupt) else str(error)
                self.events.write("error", step=self.step, epoch=self.epoch, message=message)
                raise
            finally:
                self.tensorboard.close()
                dist_utils.shutdown_distributed(self.ctx)

    def _run(self) -> TrainResult:
        if self.resume_from is not None:
            self._restore()
        elif self.ctx.is_main:
            self.run.write_split(self.train_loader.dataset, self.val_loader.dataset if self.val_loader else None)
        self.events.write("start", step=self.step, epoch=self.epoch, name=self.config.name, task=self.config.train.task,
                          world_size=self.ctx.world_size, batch_size=self.config.train.batch_size,
                          steps_per_epoch=self.epoch_lengths[0] if self.epoch_lengths else 0,
                          total_steps=self.total_steps, n_train=self.n_train,
                          n_val=self.n_val, resumed_from=str(self.resume_from) if self.resume_from else None)
        started = time.monotonic()
        session_start = (started, self.step)
        if self._agree_to_stop():  # cancelled while the run was being set up (data generation, model loading)
            return self._interrupt()
        while self.epoch < self.config.train.epochs:
            epoch_start = time.monotonic()
            if self.batch_in_epoch < self.epoch_lengths[self.epoch]:
                self._train_epoch(session_start)
            if self.batch_in_epoch >= self.epoch_lengths[self.epoch]:
                self._end_epoch(epoch_start)
            elif not self.stopping:
                raise TrainingError(f"epoch {self.epoch + 1} ended after {self.batch_in_epoch} of "
                                    f"{self.epoch_lengths[self.epoch]} batches (the batch sampler changed its length)")
            self.stopping = self._agree_to_stop()
            if self.stopping:
                return self._interrupt()
        if self.ctx.is_main:
            self.run.discard_stale_interrupted(self.step)
        self.events.write("done", step=self.step, epoch=self.epoch, best_epoch=self.best_epoch,
                          best_metric=self.best_metric,
                          elapsed_s=time.monotonic() - started)
        return self._result("done")

    def _interrupt(self) -> TrainResult:
        self._save("interrupted", {})
        self.events.write("interrupted", step=self.step, epoch=self.epoch, path=str(self.run.checkpoint("interrupted")))
        logger.warning("interrupted at epoch %d, step %d; saved %s (continue with --resume)",
                       self.epoch + 1, self.step, self.run.checkpoint("interrupted"))
        return self._result("interrupted")

    def _result(self, status: str) -> TrainResult:
        return TrainResult(self.run.path, status, self.step, self.epoch, self.best_epoch, self.best_metric)


def train(config: ExperimentConfig, run_dir: str | Path | None = None, resume: bool = False, force: bool = False,
          task_cls: type[Task] | None = None) -> TrainResult:
    """Train ``config`` in ``run_dir`` (default ``settings.runs_dir()/<config.name>``); see the module docstring."""
    return Trainer(config, run_dir, resume=resume, force=force, task_cls=task_cls).train()

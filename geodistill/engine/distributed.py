"""Data-parallel training with PyTorch's ``DistributedDataParallel`` (launched with ``torchrun``).

The same entry point runs alone or under ``torchrun --nproc_per_node N -m geodistill train ...``: the
environment variables ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` set by torchrun switch it on. The backend is
NCCL on CUDA and gloo on the CPU. Every rank builds the same model from the same seed; the loop wraps the
task's training-step module (:class:`geodistill.engine.tasks.base.TrainStep`, whose ``forward(batch)``
returns the task's losses) in :func:`wrap_for_training`, a ``DistributedDataParallel``: DDP broadcasts
rank 0's parameters and buffers at construction and averages the gradients of the trainable parameters
over ranks during each backward pass (frozen parameters, ``requires_grad=False``, are left alone). After
each optimizer step the loop broadcasts the step module's buffers from rank 0 (:func:`sync_buffers`;
DDP's own per-forward buffer broadcast is switched off because it would come one step late for the EMA
teacher hook and the saved weights), so all ranks hold identical weights after every step. Networks that
are not trained (the distillation teacher) stay outside DDP.

``train.batch_size`` is **per rank**: the effective batch is ``batch_size * world_size``. By default the
weak loss's in-batch negatives are the rank's own batch (as on one GPU with ``batch_size``);
``train.gather_negatives=true`` gathers every rank's features with a gradient-carrying ``all_gather``
(:func:`all_gather_with_grad`) so each rank scores its satellites against the templates of the whole
global batch. Only rank 0 validates, logs and saves.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from geodistill.errors import GeoDistillError

logger = logging.getLogger("geodistill.engine.distributed")

_BUCKET_ELEMENTS = 1 << 24  # buffer broadcast bucket size (elements)


@dataclass
class DistContext:
    """Where this process sits in the job: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> the process's CUDA device when there is one, else the CPU; ``cuda`` -> ``cuda:<local_rank>``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GeoDistillError(f"train.device={name} but no CUDA device is available; use train.device=cpu or auto")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise GeoDistillError(f"train.device={name!r} is not a device (use auto, cpu, cuda or cuda:N)") from error


def init_distributed(device_name: str) -> DistContext:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            init_kwargs = {"device_id": device} if device.type == "cuda" else {}
            # rank 0 validates alone while the others wait in a collective: allow for a long validation
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=60), **init_kwargs)
            logger.info("rank %d of %d joined (%s backend, %s)", rank, world_size, backend, device)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def broadcast_tensors(tensors: Iterable[torch.Tensor], ctx: DistContext, src: int = 0) -> None:
    """Overwrite ``tensors`` in place with rank ``src``'s values."""
    if not ctx.enabled:
        return
    with torch.no_grad():
        for tensor in tensors:
            dist.broadcast(tensor.data, src=src)


def wrap_for_training(module: nn.Module, ctx: DistContext, find_unused_parameters: bool = False) -> nn.Module:
    """``module`` itself in a single process; a ``DistributedDataParallel`` around it when distributed.

    DDP broadcasts rank 0's parameters and buffers here (every rank must call this at the same point) and
    averages the gradients of the parameters with ``requires_grad`` over ranks in every backward pass that
    follows a forward call of the returned module. Its per-forward buffer broadcast is off: the loop calls
    :func:`sync_buffers` after each optimizer step instead.

    Args:
        module: the training-step module (its ``forward`` returns the losses).
        ctx: the process's place in the job.
        find_unused_parameters: let DDP tolerate trainable parameters that get no gradient in a step
            (costs a graph traversal per step).
    """
    if not ctx.enabled:
        return module
    device_ids = [ctx.device.index if ctx.device.index is not None else torch.cuda.current_device()] \
        if ctx.device.type == "cuda" else None
    wrapped = DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=find_unused_parameters,
                                      forward_sync_buffers=False)
    logger.info("DistributedDataParallel over %d ranks: %d trainable tensors", ctx.world_size,
                sum(1 for p in module.parameters() if p.requires_grad))
    return wrapped


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` (or ``module`` itself)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def parameters_without_gradient(module: nn.Module, limit: int = 5) -> list[str]:
    """Names of (at most ``limit``) parameters with ``requires_grad`` whose ``.grad`` is None after a backward."""
    names = [name for name, p in unwrap(module).named_parameters() if p.requires_grad and p.grad is None]
    return names[:limit] + (["..."] if len(names) > limit else [])


def sync_buffers(module: nn.Module, ctx: DistContext, src: int = 0) -> None:
    """Overwrite every buffer of ``module`` (BatchNorm statistics ...) with rank ``src``'s, in few broadcasts.

    Buffers are grouped by dtype and device and flattened into buckets of at most ``_BUCKET_ELEMENTS``.
    """
    if not ctx.enabled:
        return
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for buffer in unwrap(module).buffers():
        groups.setdefault((buffer.dtype, buffer.device), []).append(buffer)
    with torch.no_grad():
        for buffers in groups.values():
            bucket: list[torch.Tensor] = []
            size = 0
            for buffer in buffers + [None]:
                if buffer is not None:
                    bucket.append(buffer)
                    size += buffer.numel()
                if bucket and (buffer is None or size >= _BUCKET_ELEMENTS):
                    flat = torch.cat([b.reshape(-1) for b in bucket]).to(ctx.device)
                    dist.broadcast(flat, src=src)
                    offset = 0
                    for target in bucket:
                        target.copy_(flat[offset: offset + target.numel()].view_as(target))
                        offset += target.numel()
                    bucket, size = [], 0


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum of a (small) tensor over ranks; returns a new CPU tensor."""
    if not ctx.enabled:
        return values.detach().clone()
    values = values.detach().to(ctx.device, copy=True)  # NCCL reduces device tensors only
    dist.all_reduce(values)
    return values.cpu()


def all_gather_with_grad(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0 (rank order); gradients flow back to each rank's part.

    Args:
        tensor: (B, ...) with the same shape on every rank.

    Returns:
        (world_size * B, ...); this rank's rows are at ``rank * B``.
    """
    if not ctx.enabled:
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor.contiguous()), dim=0)

"""Checkpoint folders: ``weights.safetensors`` + ``config.json`` (+ ``train_state.pt`` in run checkpoints).

A checkpoint is a folder, never a pickle of objects:

- ``weights.safetensors``: every network's ``state_dict`` flattened with a prefix per network
  (``model.`` for weak and orientation checkpoints, ``teacher.`` and ``student.`` for distillation).
- ``config.json``: ``{"format": "geodistill-checkpoint", "version": 1, "geodistill_version", "task",
  "role", "deploy" (distillation only), "config": <resolved ExperimentConfig>, "metrics", "epoch", "step",
  "created"}``, plus optionally ``"calibration"`` (the confidence calibrator per role,
  :mod:`geodistill.calibration`) and ``"packaged_weights"`` (shipped checkpoints: the frozen backbone is not
  stored but loaded from its installed package, whose weights file must have the recorded sha256).
- ``train_state.pt`` (run checkpoints only): optimizer, scheduler, step, epoch, RNG and sampler state,
  made of tensors, dicts, lists, strings and numbers only, read back with ``torch.load(weights_only=True)``.

Loading never executes code. A folder is written to a temporary sibling and renamed into place, so a
crash mid-write never leaves a half-written checkpoint under the final name. Missing or damaged files,
other formats or versions and weights that do not fit the network raise :class:`CheckpointError`
naming the file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from geodistill import __version__
from geodistill import settings
from geodistill.config import ConfigError, ExperimentConfig, config_from_dict, config_to_dict
from geodistill.errors import CheckpointError, WeightsUnavailableError
from geodistill.models.backbones import packaged_backbone

logger = logging.getLogger("geodistill.checkpoint")

FORMAT = "geodistill-checkpoint"
VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"
TRAIN_STATE_FILE = "train_state.pt"
NETWORKS = ("model", "teacher", "student")
ROLES = ("weak", "teacher", "student", "orientation", "supervised")
PACKAGED_WEIGHTS = "packaged_weights"  # config.json: tensors not stored because they come from an installed package
BACKBONE_PREFIX = "backbone."


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        path: the checkpoint folder.
        config: the resolved experiment config it was trained with.
        meta: the rest of ``config.json`` (task, role, deploy, metrics, epoch, step, versions).
        state_dicts: ``{"model": ...}`` or ``{"teacher": ..., "student": ...}`` of CPU tensors.
        train_state: the content of ``train_state.pt`` when asked for, else None.
    """

    path: Path
    config: ExperimentConfig
    meta: dict
    state_dicts: dict[str, dict[str, torch.Tensor]]
    train_state: dict | None = field(default=None)

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def role(self) -> str:
        return self.meta["role"]


def _flatten(state_dicts: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    flat = {}
    for network, state in state_dicts.items():
        if network not in NETWORKS:
            raise ValueError(f"network name {network!r} is not one of {NETWORKS}")
        for name, tensor in state.items():
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"{network}.{name} is a {type(tensor).__name__}, not a tensor")
            # clone: safetensors refuses tensors that share storage (tied weights, views)
            flat[f"{network}.{name}"] = tensor.detach().to("cpu").contiguous().clone()
    return flat


def _unflatten(flat: dict[str, torch.Tensor], source: Path) -> dict[str, dict[str, torch.Tensor]]:
    state_dicts: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        network, _, name = key.partition(".")
        if network not in NETWORKS or not name:
            raise CheckpointError(f"{source}: unexpected weight name {key!r} (expected a model./teacher./student. prefix)")
        state_dicts.setdefault(network, {})[name] = tensor
    return state_dicts


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_folder_atomically(tmp: Path, path: Path) -> None:
    """Move the finished folder ``tmp`` to ``path``, replacing an existing folder with one rename each."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
        path.rename(old)
    try:
        tmp.rename(path)
    except BaseException:
        if old is not None:
            old.rename(path)
        raise
    _fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(
    path: str | Path,
    config: ExperimentConfig,
    state_dicts: dict[str, dict[str, torch.Tensor]],
    meta: dict,
    train_state: dict | None = None,
) -> Path:
    """Write a checkpoint folder atomically (temporary sibling folder, then rename).

    Args:
        path: the checkpoint folder to create or replace.
        config: the resolved experiment config, embedded in ``config.json``.
        state_dicts: ``{"model": sd}`` or ``{"teacher": sd, "student": sd}``.
        meta: must hold ``task`` and ``role``; may hold ``deploy``, ``metrics``, ``epoch``, ``step``.
        train_state: optimizer/scheduler/RNG/sampler state for resuming (tensors, dicts, lists, numbers).

    Returns:
        The checkpoint folder.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if "task" not in meta or "role" not in meta:
        raise ValueError("checkpoint meta needs 'task' and 'role'")
    if meta["role"] not in ROLES:
        raise ValueError(f"role {meta['role']!r} is not one of {ROLES}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        # one metadata entry: safetensors writes a metadata map in arbitrary order, so several entries would
        # make the bytes (and the sha256 of checkpoints/README.md) differ between two saves of the same weights
        save_file(_flatten(state_dicts), str(tmp / WEIGHTS_FILE), metadata={"format": f"{FORMAT}/{VERSION}"})
        document = {
            "format": FORMAT,
            "version": VERSION,
            "geodistill_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "metrics": {},
            "epoch": None,
            "step": None,
            **_json_safe(meta),
            "config": config_to_dict(config),
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(document, indent=2))
        if train_state is not None:
            torch.save(train_state, tmp / TRAIN_STATE_FILE)
        replace_folder_atomically(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.debug("saved checkpoint %s", path)
    return path


def update_checkpoint_meta(path: str | Path, updates: dict[str, Any]) -> Path:
    """Set top-level entries of a checkpoint's ``config.json`` (not ``config``, ``format`` or ``version``),
    leaving the weights untouched. The file is replaced atomically (temporary sibling, then rename)."""
    path = resolve_checkpoint(path)
    document = read_checkpoint_meta(path)
    protected = sorted(set(updates) & {"config", "format", "version", "task", "role"})
    if protected:
        raise ValueError(f"{protected} cannot be changed after training")
    document.update(_json_safe(updates))
    file = path / CONFIG_FILE
    tmp = file.with_name(f".{CONFIG_FILE}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(json.dumps(document, indent=2))
        os.replace(tmp, file)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path)
    return file


def strip_packaged_backbone(state_dicts: dict[str, dict[str, torch.Tensor]], config: ExperimentConfig,
                            ) -> tuple[dict[str, dict[str, torch.Tensor]], dict | None]:
    """Leave out the frozen backbone of every localizer network when it is exactly the installed package's weights
    (rounded to the stored dtype), so that a checkpoint holds only what training changed.

    Returns:
        ``(state_dicts, entry)``: without the ``backbone.`` tensors and the :data:`PACKAGED_WEIGHTS` entry for
        ``config.json`` (backbone, package, sha256 of its weights file, dtype), or the input unchanged and None
        when the backbone is trained, comes from another file or differs from the package.
    """
    model = config.model
    if not model.freeze_backbone or model.weights_path or not state_dicts:
        return state_dicts, None
    if not all(any(name.startswith(BACKBONE_PREFIX) for name in state) for state in state_dicts.values()):
        return state_dicts, None
    try:
        packaged, source = packaged_backbone(model.backbone)
    except WeightsUnavailableError as error:
        logger.info("the backbone stays in the checkpoint: %s", error)
        return state_dicts, None
    dtypes = {tensor.dtype for state in state_dicts.values() for name, tensor in state.items()
              if name.startswith(BACKBONE_PREFIX) and tensor.is_floating_point()}
    if len(dtypes) != 1:
        return state_dicts, None
    dtype = dtypes.pop()
    expected = {BACKBONE_PREFIX + name: _as_stored(tensor, dtype) for name, tensor in packaged.items()}
    for network, state in state_dicts.items():
        stored = {name: tensor for name, tensor in state.items() if name.startswith(BACKBONE_PREFIX)}
        if stored.keys() != expected.keys() or not all(torch.equal(stored[k], expected[k]) for k in stored):
            logger.warning("the %s network's backbone differs from the %s weights; it stays in the checkpoint",
                           network, source["package"])
            return state_dicts, None
    stripped = {network: {name: tensor for name, tensor in state.items() if not name.startswith(BACKBONE_PREFIX)}
                for network, state in state_dicts.items()}
    entry = {"prefix": BACKBONE_PREFIX, "backbone": source["backbone"], "package": source["package"],
             "sha256": source["sha256"], "dtype": str(dtype).replace("torch.", "")}
    return stripped, entry


def _as_stored(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def _restore_packaged_backbone(state_dicts: dict[str, dict[str, torch.Tensor]], entry: dict, weights: Path) -> None:
    """Put the backbone left out by :func:`strip_packaged_backbone` back into every network, from its package."""
    package = entry.get("package", "?")
    try:
        packaged, source = packaged_backbone(entry["backbone"])
        dtype = getattr(torch, entry["dtype"])
        prefix = entry["prefix"]
    except WeightsUnavailableError as error:
        raise CheckpointError(f"{weights}: the frozen backbone is not stored in the checkpoint but loaded from the "
                              f"{package} package, which cannot be used: {error}") from error
    except (KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{weights.parent / CONFIG_FILE}: damaged {PACKAGED_WEIGHTS!r} entry ({error!r})") from error
    if source["sha256"] != entry.get("sha256"):
        raise CheckpointError(
            f"{weights}: the frozen backbone comes from the {package} package, whose weights file had sha256 "
            f"{entry.get('sha256')} when the checkpoint was exported; the installed {source['file']} has "
            f"{source['sha256']}. Install the package version of requirements.txt (other weights would change "
            "every prediction)")
    for state in state_dicts.values():
        state.update({prefix + name: _as_stored(tensor, dtype) for name, tensor in packaged.items()})


def read_checkpoint_meta(path: str | Path) -> dict:
    """Read and check ``config.json`` of a checkpoint folder (cheap: no weights are read)."""
    path = Path(path)
    file = path / CONFIG_FILE
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint folder")
    if not file.is_file():
        raise CheckpointError(f"{file}: missing; a checkpoint folder holds {WEIGHTS_FILE} and {CONFIG_FILE}")
    try:
        document = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{file}: damaged (not valid JSON: {error})") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise CheckpointError(f"{file}: not a GeoDistill checkpoint (format {found!r}, expected {FORMAT!r})")
    if document.get("version") != VERSION:
        raise CheckpointError(
            f"{file}: checkpoint format version {document.get('version')!r}, but this GeoDistill "
            f"({__version__}) reads version {VERSION}; re-export it with a matching version"
        )
    for key in ("task", "role", "config"):
        if key not in document:
            raise CheckpointError(f"{file}: damaged (no {key!r} entry)")
    return document


def load_checkpoint(path: str | Path, train_state: bool = False) -> Checkpoint:
    """Load a checkpoint folder (or a run folder, meaning its ``best/``) without executing code.

    Args:
        path: checkpoint folder or run folder.
        train_state: also read ``train_state.pt`` (for resuming); an error if it is missing.

    Returns:
        The :class:`Checkpoint`, tensors on the CPU.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = resolve_checkpoint(path)
    document = read_checkpoint_meta(path)
    try:
        config = config_from_dict(document["config"])
    except ConfigError as error:
        raise CheckpointError(
            f"{path / CONFIG_FILE}: its config does not fit this version of GeoDistill: {error}") from error
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing")
    try:
        flat = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{weights}: damaged or not a safetensors file ({error})") from error
    state_dicts = _unflatten(flat, weights)
    if document.get(PACKAGED_WEIGHTS):
        _restore_packaged_backbone(state_dicts, document[PACKAGED_WEIGHTS], weights)
    state = None
    if train_state:
        state = load_train_state(path)
    meta = {key: value for key, value in document.items() if key != "config"}
    return Checkpoint(path=path, config=config, meta=meta, state_dicts=state_dicts, train_state=state)


def load_train_state(path: str | Path) -> dict:
    """Read ``train_state.pt`` of a run checkpoint with ``torch.load(weights_only=True)``."""
    file = Path(path) / TRAIN_STATE_FILE
    if not file.is_file():
        raise CheckpointError(f"{file}: missing; only run checkpoints (last/, best/, interrupted/) can be resumed")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged or unsafe files
        raise CheckpointError(f"{file}: damaged or holds objects that cannot be loaded safely ({error})") from error
    if not isinstance(state, dict):
        raise CheckpointError(f"{file}: damaged (expected a dict, got {type(state).__name__})")
    return state


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder as given, or ``<run>/best`` when ``path`` is a run folder.

    A relative path that does not exist from the working directory is also looked up under the runs
    root (``runs/<name>`` or ``<name>``) and the checkpoints root (``checkpoints/<name>`` or ``<name>``).
    """
    path = Path(path).expanduser()
    if not path.exists() and not path.is_absolute():
        path = _lookup_under_roots(path)
    if (path / CONFIG_FILE).is_file() or (path / WEIGHTS_FILE).is_file():
        return path
    if (path / "best" / CONFIG_FILE).is_file():
        return path / "best"
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or run folder")
    if not path.is_dir():
        raise CheckpointError(f"{path}: a file, not a checkpoint folder; pass the folder that holds {CONFIG_FILE} "
                              f"and {WEIGHTS_FILE} (or a run folder with best/)")
    found = sorted(p.name for p in path.iterdir() if (p / CONFIG_FILE).is_file())
    hint = f"; checkpoints in it: {', '.join(found)}" if found else ""
    raise CheckpointError(f"{path}: neither a checkpoint folder ({CONFIG_FILE}) nor a run folder with best/{hint}")


def _lookup_under_roots(path: Path) -> Path:
    for root, default_name in ((settings.runs_dir(), "runs"), (settings.checkpoints_dir(), "checkpoints")):
        parts = path.parts[1:] if path.parts and path.parts[0] in (default_name, root.name) else path.parts
        candidate = root.joinpath(*parts) if parts else root
        if candidate.exists():
            return candidate
    return path


def network_for_role(checkpoint: Checkpoint, role: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict of the network to use: ``model`` for single-network checkpoints; for a
    distillation checkpoint the ``role`` asked for, else its ``deploy`` network (student by default)."""
    if "model" in checkpoint.state_dicts:
        if role in ("teacher", "student"):
            raise CheckpointError(f"{checkpoint.path}: a {checkpoint.task} checkpoint has no {role} network")
        return checkpoint.state_dicts["model"]
    chosen = role or checkpoint.meta.get("deploy") or "student"
    if chosen not in checkpoint.state_dicts:
        have = ", ".join(sorted(checkpoint.state_dicts))
        raise CheckpointError(f"{checkpoint.path / WEIGHTS_FILE}: no {chosen} network (it holds: {have})")
    return checkpoint.state_dicts[chosen]


def load_state_dict_checked(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str | Path) -> None:
    """``module.load_state_dict`` that reports an architecture mismatch as a :class:`CheckpointError`."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [
        f"{name} {tuple(state_dict[name].shape)} vs {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in state_dict and state_dict[name].shape != tensor.shape
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape (file vs model)", wrong)):
            if names:
                shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                parts.append(f"{label}: {shown}")
        raise CheckpointError(
            f"{source}: weights do not fit the network built from the config (another architecture?); " + "; ".join(parts)
        )
    module.load_state_dict(state_dict)

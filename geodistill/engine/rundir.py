"""Run folders: ``runs/<name>/`` with ``config.yaml``, ``events.jsonl`` and ``last/``, ``best/``,
``interrupted/`` checkpoints (see :mod:`geodistill.checkpoint`).

``config.yaml`` is the resolved config, written before the first step; ``python -m geodistill train
--config runs/<name>/config.yaml`` repeats the run. A resume compares the new resolved config with the
saved one and refuses any difference outside :data:`RUNTIME_KEYS` unless forced.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import yaml
from torch.utils.data import Subset

from geodistill import settings
from geodistill.checkpoint import CONFIG_FILE, read_checkpoint_meta
from geodistill.config import ConfigError, ExperimentConfig, config_diff, config_from_dict, config_to_dict, save_config
from geodistill.errors import GeoDistillError

logger = logging.getLogger("geodistill.engine.rundir")

CHECKPOINT_KINDS = ("last", "best", "interrupted")
CANCEL_FILE = "cancel.request"              # written by the job manager to ask its trainer to stop
CANCEL_FILE_ENV = "GEODISTILL_CANCEL_FILE"  # where the job manager tells the trainer to look for it
# keys that change how a run executes but not what it computes; a resume may change them freely
RUNTIME_KEYS = ("train.device", "train.tensorboard", "train.log_every", "data.num_workers", "data.synthetic.workers")


class RunError(GeoDistillError):
    """A run folder that cannot be used as asked (exists already, nothing to resume, changed config)."""


def default_run_dir(config: ExperimentConfig) -> Path:
    """``settings.runs_dir() / config.name`` (``run`` when the config has no name)."""
    return settings.runs_dir() / (config.name or "run")


class RunDir:
    """Paths and bookkeeping of one run folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser().resolve()

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def cancel_path(self) -> Path:
        return self.path / CANCEL_FILE

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    def checkpoint(self, kind: str) -> Path:
        if kind not in CHECKPOINT_KINDS:
            raise ValueError(f"checkpoint kind {kind!r} is not one of {CHECKPOINT_KINDS}")
        return self.path / kind

    def has_history(self) -> bool:
        """Whether an earlier run left events or checkpoints here."""
        return self.events_path.exists() or any((self.checkpoint(k) / CONFIG_FILE).exists() for k in CHECKPOINT_KINDS)

    def prepare_new(self, config: ExperimentConfig, force: bool = False, write: bool = True) -> None:
        """Start a fresh run here: refuse to mix with an earlier run unless ``force`` (which deletes it).

        Every rank calls this (so all of them raise alike); only the one with ``write`` changes files.
        """
        blocking = next((folder for folder in (self.path, *self.path.parents) if folder.exists()), None)
        if blocking is not None and not blocking.is_dir():
            raise RunError(f"run folder {self.path}: {blocking} is a file, not a folder; pass another --run-dir")
        if self.has_history() and not force:
            raise RunError(
                f"{self.path} already holds a run; pass --resume to continue it, --force to start over "
                "(deletes its events and checkpoints), or --run-dir to use another folder"
            )
        if not write:
            return
        if self.has_history():
            logger.warning("--force: deleting the earlier run in %s", self.path)
            for child in self.path.iterdir():  # last/, best/, interrupted/ and any task-specific checkpoint
                if child.is_dir() and (child / CONFIG_FILE).is_file():
                    shutil.rmtree(child, ignore_errors=True)
            shutil.rmtree(self.tensorboard_dir, ignore_errors=True)
            self.events_path.unlink(missing_ok=True)
            (self.path / "split.json").unlink(missing_ok=True)
        self.path.mkdir(parents=True, exist_ok=True)
        save_config(config, self.config_path)

    def newest_checkpoint(self) -> Path:
        """The newer (by step) of ``interrupted/`` and ``last/``, for ``--resume``."""
        candidates = []
        for kind in ("interrupted", "last"):
            folder = self.checkpoint(kind)
            if (folder / CONFIG_FILE).is_file():
                step = read_checkpoint_meta(folder).get("step") or 0
                candidates.append((step, kind == "interrupted", folder))
        if not candidates:
            raise RunError(f"{self.path}: nothing to resume (no interrupted/ or last/ checkpoint); start without --resume")
        return max(candidates)[2]

    def saved_config(self) -> dict:
        """The resolved config saved in ``config.yaml`` as a plain dict."""
        try:
            data = yaml.safe_load(self.config_path.read_text())
        except FileNotFoundError as error:
            raise RunError(f"{self.config_path}: missing; cannot check the config of the run to resume") from error
        except yaml.YAMLError as error:
            raise RunError(f"{self.config_path}: damaged ({error})") from error
        if not isinstance(data, dict):
            raise RunError(f"{self.config_path}: damaged (not a mapping)")
        return data

    def check_resume_config(self, config: ExperimentConfig, force: bool = False, write: bool = True) -> list[str]:
        """Compare ``config`` with the saved one; raise unless only runtime keys differ or ``force``.

        Returns:
            The differences (``"key: old -> new"``), runtime keys included.
        """
        saved = self.saved_config()
        try:
            saved = config_to_dict(config_from_dict(saved))  # fill keys added by newer versions with defaults
        except ConfigError as error:
            raise RunError(f"{self.config_path}: does not fit this version's config schema: {error}") from error
        changes = config_diff(saved, config_to_dict(config))
        blocking = [c for c in changes if c.split(":", 1)[0] not in RUNTIME_KEYS]
        if blocking and not force:
            raise RunError(
                f"the config differs from the run being resumed ({self.config_path}): "
                + "; ".join(blocking)
                + ". Resume with the same config, or pass --force to resume anyway (the run will no longer "
                "match an uninterrupted one)"
            )
        if changes and write:
            logger.warning("resuming with config changes: %s", "; ".join(changes))
            save_config(config, self.config_path)
        return changes

    def discard_stale_interrupted(self, step: int) -> None:
        """Delete ``interrupted/`` once a finished run has moved past it (so --resume cannot pick it)."""
        folder = self.checkpoint("interrupted")
        if (folder / CONFIG_FILE).is_file() and (read_checkpoint_meta(folder).get("step") or 0) < step:
            shutil.rmtree(folder, ignore_errors=True)

    def write_split(self, train_set, val_set) -> None:
        """Store the train/validation split of a VigorDataset with the run (``split.json``)."""
        base = train_set.dataset if isinstance(train_set, Subset) else train_set
        if not hasattr(base, "split_state"):
            return
        split = base.split_state()
        if isinstance(val_set, Subset):
            split["val_used"] = len(val_set)
        tmp = self.path / "split.json.tmp"
        tmp.write_text(json.dumps(split))
        tmp.replace(self.path / "split.json")

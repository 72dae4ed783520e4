"""The config of an adaptation run (``python -m geodistill adapt``): GeoDistill distillation of a trained localizer
on an own area's unlabelled panoramas.

The run's config is the checkpoint's own (same network, input sizes and distillation settings) with
``train.task=distill``, teacher and student initialised from the checkpoint (``distill.init_checkpoint``),
``data.root`` the area's dataset (``make-dataset``, same-area lists) and adapt's measured recipe
(``geodistill.config.ADAPT``: epochs, batch size, learning rate, the student's FoV range, the teacher's
temperature, selection). The distillation task's training step reads the panorama, the tile and its metres per
pixel, never a position label.
``best/`` is the last epoch (``select="last"``, the default), or the epoch whose deployed network has the lowest mean
distance to the GPS of the held-back panoramas (``select="gps"``; ``data.val_fraction`` of the training list; that
distance is reported every epoch either way). The adapted checkpoints inherit the source's confidence calibration
(:func:`inherit_calibration`), fitted before adaptation, so ``refine`` still reports a confidence.
"""

from __future__ import annotations

from pathlib import Path

from geodistill.checkpoint import read_checkpoint_meta, update_checkpoint_meta
from geodistill.config import ADAPT, ExperimentConfig, check_ranges, config_from_dict, config_to_dict, parse_overrides
from geodistill.engine.tasks.base import resolve_init_checkpoint
from geodistill.errors import CheckpointError

LOCALIZER_TASKS = ("weak", "distill", "supervised")
SELECTIONS = ("gps", "last")
RUN_CHECKPOINTS = ("best", "last", "best_teacher", "best_student")


def _deep_update(target: dict, updates: dict) -> None:
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def build_adapt_config(checkpoint: str, data_root: Path, name: str, epochs: int = ADAPT.epochs,
                       steps_per_epoch: int = 0, batch_size: int | None = ADAPT.batch_size, lr: float = ADAPT.lr,
                       select: str = ADAPT.select, device: str = "auto", overrides=()) -> ExperimentConfig:
    """The distillation config of an adaptation run; ``overrides`` (``key=value``) go on top.

    Args:
        checkpoint: checkpoint folder, run folder (its ``best/``) or a name under the runs or checkpoints root.
        data_root: the area's dataset root.
        name: the run name.
        epochs, steps_per_epoch, batch_size, lr, device: the training loop (``batch_size`` None keeps the checkpoint's).
        select: "last" (the last epoch) or "gps" (best epoch by distance to the held-back panoramas' GPS).
        overrides: ``key=value`` strings as for ``train``, on top of the recipe (e.g. ``distill.fov.min_deg=180``).
    """
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {SELECTIONS}, got {select!r}")
    folder = resolve_init_checkpoint(checkpoint)
    meta = read_checkpoint_meta(folder)
    if meta["task"] not in LOCALIZER_TASKS:
        raise CheckpointError(f"{folder}: adapt needs a localizer (weak, distill or supervised CCVPE checkpoint), "
                              f"not a {meta['task']} checkpoint")
    data = config_to_dict(config_from_dict(meta["config"]))
    data["name"] = name
    data["data"].update(root=str(Path(data_root).resolve()), area="same", include_semi_positives=False)
    data["data"]["synthetic"]["generate"] = False
    data["distill"]["init_checkpoint"] = str(folder)
    data["distill"]["fov"].update(min_deg=ADAPT.fov_deg[0], max_deg=ADAPT.fov_deg[1])
    data["distill"]["tau_teacher"] = ADAPT.tau_teacher
    data["train"].update(task="distill", epochs=epochs, max_steps_per_epoch=steps_per_epoch, val_limit=0,
                         select_by="val_mean" if select == "gps" else "last", device=device, noisy_gps_weight=0.0,
                         neighbour_batch=1)
    if batch_size is not None:
        data["train"]["batch_size"] = batch_size
    data["optim"].update(lr=lr, min_lr=lr / 10, warmup_steps=0)
    _deep_update(data, parse_overrides(list(overrides)))
    config = config_from_dict(data)
    check_ranges(config)
    return config


def inherit_calibration(source: str, run_dir: Path) -> list[Path]:
    """Copy the confidence calibration of the source checkpoint's deployed network into the run's checkpoints (for
    both of their networks), recorded as ``calibration_inherited_from``. An area has no labels to refit it on; the
    calibration was fitted before adaptation, so it is an approximation. Returns the folders updated (none when the
    source holds no calibration)."""
    folder = resolve_init_checkpoint(source)
    meta = read_checkpoint_meta(folder)
    role = meta.get("deploy") or meta.get("role")
    calibrator = (meta.get("calibration") or {}).get(role)
    if not calibrator:
        return []
    updated = []
    for kind in RUN_CHECKPOINTS:
        target = Path(run_dir) / kind
        if (target / "config.json").is_file():
            update_checkpoint_meta(target, {"calibration": {"student": calibrator, "teacher": calibrator},
                                            "calibration_inherited_from": f"{folder} ({role} network, fitted before "
                                                                          "adaptation)"})
            updated.append(target)
    return updated

"""Trainable tasks, keyed by ``TrainConfig.task``; each imports lazily (only the one a run uses).

See :mod:`geodistill.engine.tasks.base` for the interface a task implements.
"""

from __future__ import annotations

import importlib

from geodistill.errors import GeoDistillError

TASKS: dict[str, str] = {
    "weak": "geodistill.engine.tasks.weak:WeakTask",
    "distill": "geodistill.engine.tasks.distill:DistillTask",
    "orientation": "geodistill.engine.tasks.orientation:OrientationTask",
    "supervised": "geodistill.engine.tasks.supervised:SupervisedTask",
}


def task_class(name: str):
    """The Task class registered under ``name`` (imported on first use)."""
    if name not in TASKS:
        raise GeoDistillError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    module_name, _, class_name = TASKS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            raise GeoDistillError(f"task {name!r} is not available in this version ({module_name} is missing)") from error
        raise
    return getattr(module, class_name)

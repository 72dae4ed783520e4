"""The models of GeoDistill Studio, in one place: the UIs (``app.py``) and the commands are thin layers over this.

- the names of the shipped checkpoints (:data:`DEFAULT_LOCALIZER`, :data:`DEFAULT_ORIENTATION`, ...) under
  :func:`geodistill.settings.checkpoints_dir`;
- the heading modes a panorama can be given in (:data:`HEADING_MODES`) and the orientation model of each;
- :class:`ModelCache`: a localizer is built once per (checkpoint, role, orientation model), never per request;
- :func:`teacher_and_student`: the (teacher, student) pair of a model choice, with an explicit heading mode;
- :func:`evaluation_dataset`: a VIGOR-layout split read as ``python -m geodistill evaluate`` reads it for a model.

A model *choice* is :data:`UNTRAINED` (no checkpoint: the packaged pretrained backbone, random decoders),
``shipped:<name>`` (a folder of the checkpoints root) or the path of a checkpoint or run folder.
"""

from __future__ import annotations

import threading
from pathlib import Path

from geodistill import settings
from geodistill.checkpoint import read_checkpoint_meta, resolve_checkpoint
from geodistill.config import ExperimentConfig
from geodistill.data.vigor import VigorDataset
from geodistill.errors import GeoDistillError
from geodistill.inference import Localizer

DEFAULT_LOCALIZER = "geodistill_student"     # what predict, bench and the app use when not told otherwise
DEFAULT_TEACHER = "geodistill_teacher"       # the teacher shipped beside the default student
WEAK_BASELINE = "weak_baseline"
DEFAULT_ORIENTATION = "orientation"          # the +-45 deg heading estimator
FULL_CIRCLE_ORIENTATION = "orientation_full"  # the 0-360 deg heading estimator (shipped only when trained)
CCVPE_BASE = "ccvpe_base"                    # the CCVPE base (supervised), docs/method.md §13
CCVPE_TEACHER = "ccvpe_geodistill_teacher"   # GeoDistill on the CCVPE base: teacher
CCVPE_STUDENT = "ccvpe_geodistill_student"   # GeoDistill on the CCVPE base: student (bench's ccvpe rows)
SHIPPED_LOCALIZERS = (DEFAULT_LOCALIZER, WEAK_BASELINE)
TEACHER_OF = {DEFAULT_LOCALIZER: DEFAULT_TEACHER}

UNTRAINED = "untrained"
SHIPPED_PREFIX = "shipped:"

HEADING_MODES = ("45", "full", "aligned")    # estimate within +-45 deg, estimate on the full circle, north-aligned
ORIENTATION_MODELS = {"45": DEFAULT_ORIENTATION, "full": FULL_CIRCLE_ORIENTATION}
# the evaluation protocol's orientation settings (geodistill.evaluation.ORIENTATION_SETTINGS) and the heading
# mode each is evaluated with
HEADING_OF_SETTING = {"aligned": "aligned", "45": "45", "unknown": "full"}


class StudioError(GeoDistillError):
    """A model choice or heading mode that cannot be used."""


def shipped_checkpoint(name: str) -> Path | None:
    """``<checkpoints>/<name>`` when it holds a checkpoint, else None."""
    folder = settings.checkpoints_dir() / name
    return folder if (folder / "config.json").is_file() else None


def shipped_choice(name: str) -> str:
    return f"{SHIPPED_PREFIX}{name}"


def untrained_config() -> ExperimentConfig:
    """The model used when no checkpoint exists: packaged pretrained backbone (random when none is packaged),
    random decoders, small inputs."""
    config = ExperimentConfig()
    config.model.allow_random_init = True
    config.data.pano_height, config.data.sat_size = 128, 256
    return config


def heading_modes() -> list[str]:
    """The heading modes usable with the checkpoints installed: the full circle only where its model is shipped."""
    return [mode for mode in HEADING_MODES if mode != "full" or shipped_checkpoint(FULL_CIRCLE_ORIENTATION)]


def orientation_checkpoint(heading: str) -> str | None:
    """The orientation checkpoint of a heading mode; None means the panorama is taken as north-aligned (``aligned``,
    or ``45`` on an install without the +-45 deg model).

    Raises:
        StudioError: an unknown mode, or ``full`` without its model.
    """
    if heading not in HEADING_MODES:
        raise StudioError(f"unknown heading mode {heading!r}; use one of {', '.join(HEADING_MODES)}")
    if heading == "aligned":
        return None
    folder = shipped_checkpoint(ORIENTATION_MODELS[heading])
    if folder is None and heading == "full":
        raise StudioError(f"no full-circle orientation model in the checkpoints folder "
                          f"({FULL_CIRCLE_ORIENTATION}/); choose the +-45 deg estimate or north-aligned")
    return str(folder) if folder else None


class ModelCache:
    """Localizers by (checkpoint, role, orientation checkpoint), each built once (thread-safe)."""

    def __init__(self, device: str = "auto") -> None:
        self.device = device
        self._models: dict[tuple, Localizer] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._models)

    def get(self, checkpoint: str | None, role: str | None = None, orientation: str | None = None) -> Localizer:
        """The localizer of ``checkpoint`` (None: the untrained one, which has no orientation model)."""
        key = (checkpoint, role, orientation if checkpoint is not None else None)
        with self._lock:
            if key not in self._models:
                if checkpoint is None:
                    self._models[key] = Localizer.from_config(untrained_config(), device=self.device)
                else:
                    self._models[key] = Localizer.from_checkpoint(checkpoint, role=role, device=self.device,
                                                                  orientation_checkpoint=orientation)
            return self._models[key]

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


MODELS = ModelCache()


def teacher_and_student(choice: str | None, heading: str, cache: ModelCache = MODELS) -> tuple[Localizer, Localizer]:
    """The (teacher, student) localizers of a model choice; both use the orientation model of ``heading``
    (:data:`HEADING_MODES`; ``aligned``: none). A single-network choice returns the same localizer twice.

    Raises:
        StudioError: unknown heading mode or shipped name; CheckpointError: a missing or damaged checkpoint.
    """
    orientation = orientation_checkpoint(heading)
    if choice == UNTRAINED or not choice:
        model = cache.get(None)
        return model, model
    if choice.startswith(SHIPPED_PREFIX):
        name = choice.removeprefix(SHIPPED_PREFIX)
        folder = shipped_checkpoint(name)
        if folder is None:
            raise StudioError(f"no shipped checkpoint {name!r} in {settings.checkpoints_dir()}")
        student = cache.get(str(folder), None, orientation)
        teacher_folder = shipped_checkpoint(TEACHER_OF[name]) if name in TEACHER_OF else None
        teacher = cache.get(str(teacher_folder), None, orientation) if teacher_folder else student
        return teacher, student
    if read_checkpoint_meta(resolve_checkpoint(choice))["task"] == "distill":
        return cache.get(choice, "teacher", orientation), cache.get(choice, "student", orientation)
    model = cache.get(choice, None, orientation)
    return model, model


def evaluation_dataset(localizer: Localizer, root: str | Path, area: str, split: str) -> VigorDataset:
    """The split as ``python -m geodistill evaluate`` reads it for ``localizer``: at the model's input size, with the
    checkpoint's own train/validation split and default camera height."""
    config = localizer.config
    return VigorDataset(root, area=area, split=split, pano_height=localizer.pano_height, sat_size=localizer.sat_size,
                        val_fraction=config.data.val_fraction, split_seed=config.data.split_seed,
                        default_camera_height_m=config.model.camera_height_m)

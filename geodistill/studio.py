"""The models of GeoDistill Studio, in one place: the UIs (``app.py``) and the commands are thin layers over this.

- the names of the shipped checkpoints (:data:`DEFAULT_LOCALIZER`, :data:`DEFAULT_ORIENTATION`, ...) under
  :func:`geodistill.settings.checkpoints_dir`;
- the heading modes a panorama can be given in (:data:`HEADING_MODES`), which of them a model choice can use
  (:func:`heading_modes`), the orientation model of each and the prediction arguments of each
  (:func:`heading_arguments`);
- :class:`ModelCache`: a localizer is built once per (checkpoint, role, orientation model), never per request;
- :func:`teacher_and_student`: the (teacher, student) pair of a model choice, with an explicit heading mode;
- :func:`evaluation_dataset`: a VIGOR-layout split read as ``python -m geodistill evaluate`` reads it for a model;
  :func:`orientation_settings`: the evaluation protocol's heading settings a model choice supports;
- :func:`result_document` / :func:`result_geojson`: a localized sample as JSON (the documented prediction fields
  plus ``uv_file``, pixels of the tile file) and as a GeoJSON FeatureCollection.

A model *choice* is :data:`UNTRAINED` (no checkpoint: the packaged pretrained backbone, random decoders),
``shipped:<name>`` (a folder of the checkpoints root) or the path of a checkpoint or run folder.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from geodistill import keys, settings, shipped
from geodistill.checkpoint import read_checkpoint_meta, resolve_checkpoint
from geodistill.config import ExperimentConfig
from geodistill.data.vigor import VigorDataset
from geodistill.errors import GeoDistillError
from geodistill.geometry.frames import uv_to_latlon
from geodistill.inference import Localizer, Prediction, checkpoint_estimates_heading
# the shipped names, re-exported for the UIs (defined in geodistill.shipped, the one place)
from geodistill.shipped import (CCVPE_STUDENT, DEFAULT_LOCALIZER, DEFAULT_ORIENTATION,  # noqa: F401
                               FULL_CIRCLE_ORIENTATION, WEAK_BASELINE)

DEFAULT_TEACHER = shipped.teacher_of(DEFAULT_LOCALIZER)  # the teacher shipped beside the default student
# the shipped choices a UI offers, when present: the default first, then the other students and the bases
SHIPPED_LOCALIZERS = tuple(dict.fromkeys([DEFAULT_LOCALIZER, *shipped.students(), *shipped.LINES.values()]))
TEACHER_OF = {student: shipped.teacher_of(student) for student in shipped.students()}

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


def default_checkpoint() -> Path:
    """``<checkpoints>/<DEFAULT_LOCALIZER>``, the model of ``predict``, ``evaluate`` and the app when none is named.

    Raises:
        StudioError: the default is not shipped in this checkpoints folder.
    """
    folder = shipped_checkpoint(DEFAULT_LOCALIZER)
    if folder is None:
        raise StudioError(f"no --checkpoint given and no default model at "
                          f"{settings.checkpoints_dir() / DEFAULT_LOCALIZER}; pass --checkpoint PATH (a checkpoint "
                          "or a run folder from `python -m geodistill train`)")
    return folder


def default_localizer(device: str = "cpu") -> Localizer:
    """The shipped default localizer, with the +-45 deg orientation model where it needs one and one is shipped (a
    CCVPE checkpoint estimates its own heading: no orientation model is loaded for it).

    Raises:
        StudioError: the default is not shipped; CheckpointError: a damaged checkpoint.
    """
    checkpoint = default_checkpoint()
    orientation = None if checkpoint_estimates_heading(checkpoint) else shipped_checkpoint(DEFAULT_ORIENTATION)
    return Localizer.from_checkpoint(checkpoint, device=device, orientation_checkpoint=orientation)


def shipped_choice(name: str) -> str:
    return f"{SHIPPED_PREFIX}{name}"


def untrained_config() -> ExperimentConfig:
    """The model used when no checkpoint exists: packaged pretrained backbone (random when none is packaged),
    random decoders, small inputs."""
    config = ExperimentConfig()
    config.model.allow_random_init = True
    config.data.pano_height, config.data.sat_size = 128, 256
    return config


def choice_folder(choice: str | None) -> str | None:
    """The checkpoint (or run) folder of a model choice; None for the untrained model.

    Raises:
        StudioError: a shipped name with no checkpoint.
    """
    if not choice or choice == UNTRAINED:
        return None
    if choice.startswith(SHIPPED_PREFIX):
        name = choice.removeprefix(SHIPPED_PREFIX)
        folder = shipped_checkpoint(name)
        if folder is None:
            raise StudioError(f"no shipped checkpoint {name!r} in {settings.checkpoints_dir()}")
        return str(folder)
    return choice


def estimates_own_heading(choice: str | None) -> bool:
    """Whether the model of a choice reads its own heading over the full circle (a CCVPE checkpoint), from its
    ``config.json`` without loading weights; False for the untrained model and for what cannot be read."""
    try:
        folder = choice_folder(choice)
        return folder is not None and checkpoint_estimates_heading(folder)
    except GeoDistillError:
        return False


def heading_modes(choice: str | None = None) -> list[str]:
    """The heading modes the model of ``choice`` can use (None: a G2SWeakly model): the full circle for a CCVPE
    model, which estimates its own heading, and for another only where the full-circle orientation model is
    shipped."""
    full = estimates_own_heading(choice) or shipped_checkpoint(FULL_CIRCLE_ORIENTATION) is not None
    return [mode for mode in HEADING_MODES if mode != "full" or full]


def heading_arguments(heading: str) -> dict:
    """The heading arguments of :meth:`Localizer.predict` for a heading mode, as the evaluation protocol uses them:
    ``aligned`` takes the sample's heading as known, ``45`` estimates within ±45° of north and ``full`` on the whole
    circle (a model that cannot estimate a heading takes the sample's heading as known)."""
    if heading not in HEADING_MODES:
        raise StudioError(f"unknown heading mode {heading!r}; use one of {', '.join(HEADING_MODES)}")
    if heading == "aligned":
        return {"estimate_heading": False}
    if heading == "45":
        return {"estimate_heading": None, "heading_prior_deg": 0.0, "heading_range_deg": 45.0}
    return {"estimate_heading": None}


def orientation_checkpoint(heading: str, choice: str | None = None) -> str | None:
    """The orientation checkpoint of a heading mode for a model choice; None means none is attached: ``aligned``,
    a CCVPE model (it estimates its own heading), or ``45`` on an install without the +-45 deg model (the
    panorama is then taken as north-aligned).

    Raises:
        StudioError: an unknown mode, or ``full`` without its model for a model that needs one.
    """
    if heading not in HEADING_MODES:
        raise StudioError(f"unknown heading mode {heading!r}; use one of {', '.join(HEADING_MODES)}")
    if heading == "aligned" or estimates_own_heading(choice):
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
    if choice == UNTRAINED or not choice:
        orientation_checkpoint(heading)
        model = cache.get(None)
        return model, model
    orientation = orientation_checkpoint(heading, choice)
    if choice.startswith(SHIPPED_PREFIX):
        name = choice.removeprefix(SHIPPED_PREFIX)
        folder = choice_folder(choice)
        student = cache.get(folder, None, orientation)
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


def orientation_settings(choice: str | None = None) -> list[str]:
    """The evaluation protocol's heading settings (:data:`HEADING_OF_SETTING`) whose heading mode the model of
    ``choice`` can use (:func:`heading_modes`): ``unknown`` for a CCVPE model, or where the full-circle orientation
    model is shipped."""
    modes = heading_modes(choice)
    return [setting for setting, mode in HEADING_OF_SETTING.items() if mode in modes]


def file_pixels_per_pixel(sample: dict) -> float:
    """How many pixels of the tile file one pixel of the sample's tile covers (``sat_file_side / S``)."""
    side = int(sample[keys.SAT].shape[-1])
    return float(sample.get(keys.SAT_FILE_SIDE) or side) / side


def _prediction_fields(prediction: Prediction, to_file: float) -> dict:
    document = prediction.to_dict()
    document["uv_file"] = [float(prediction.uv[0]) * to_file, float(prediction.uv[1]) * to_file]
    document["uv_gt_file"] = None if prediction.uv_gt is None else \
        [float(prediction.uv_gt[0]) * to_file, float(prediction.uv_gt[1]) * to_file]
    return document


def result_document(sample: dict, predictions: dict[str, Prediction], model: str = "") -> dict:
    """A localized sample as JSON: per model (``teacher``, ``student``) the fields of ``Prediction.to_dict`` plus
    ``uv_file`` / ``uv_gt_file`` (pixels of the tile file), and the tile file's side and centre."""
    to_file = file_pixels_per_pixel(sample)
    latlon = sample.get(keys.LATLON_SAT)
    centre = None if latlon is None or not np.isfinite(np.asarray(latlon, dtype=np.float64)).all() else \
        [float(latlon[0]), float(latlon[1])]
    return {"model": model, "pano": sample.get(keys.PANO_NAME, ""), "sat": sample.get(keys.SAT_NAME, ""),
            "tile_file_px": round(int(sample[keys.SAT].shape[-1]) * to_file), "tile_centre_latlon": centre,
            **{label: _prediction_fields(prediction, to_file) for label, prediction in predictions.items()}}


def _point(lat: float, lon: float, properties: dict) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
            "properties": properties}


def result_geojson(sample: dict, predictions: dict[str, Prediction], model: str = "") -> dict:
    """A localized sample as a GeoJSON FeatureCollection: each model's predicted position (with its error, heading
    and confidence), the true position when known, and the tile's footprint.

    Raises:
        StudioError: the sample has no georeference (tile-centre lat/lon), so it has no place on the earth.
    """
    document = result_document(sample, predictions, model)
    centre = document["tile_centre_latlon"]
    if centre is None:
        raise StudioError("this sample has no georeference (tile-centre lat/lon), so it cannot be exported as "
                          "GeoJSON; export JSON (pixels and metres) instead")
    side = int(sample[keys.SAT].shape[-1])
    mpp = float(next(iter(predictions.values())).meters_per_pixel)
    corners = [uv_to_latlon(np.array(uv, dtype=np.float64), np.asarray(centre), side, mpp)
               for uv in ([0, 0], [side, 0], [side, side], [0, side], [0, 0])]
    features = [{"type": "Feature", "properties": {"kind": "tile", "sat": document["sat"]},
                 "geometry": {"type": "Polygon", "coordinates": [[[float(c[1]), float(c[0])] for c in corners]]}}]
    for label, prediction in predictions.items():
        fields = document[label]
        if fields["lat"] is not None:
            features.append(_point(fields["lat"], fields["lon"], {
                "kind": "prediction", "model": label, "error_m": fields["error_m"],
                "heading_deg": fields["heading_deg"], "confidence": fields["confidence"],
                "uv_file": fields["uv_file"]}))
    truth = next((p for p in predictions.values() if p.uv_gt is not None), None)
    if truth is not None:
        lat, lon = uv_to_latlon(np.asarray(truth.uv_gt, dtype=np.float64), np.asarray(centre), side, mpp)
        features.append(_point(lat, lon, {"kind": "ground truth", "uv_file": document["student"]["uv_gt_file"]
                                          if "student" in document else None}))
    return {"type": "FeatureCollection", "properties": {"model": model, "pano": document["pano"]},
            "features": features}

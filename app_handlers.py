"""The handlers of GeoDistill Studio's interface (``app.py``): short functions over the core's public API.

They take and return plain values (sample dicts, predictions, numpy images, HTML), so tests call them
without a server. The models (names, cache, teacher/student pairs, heading modes) come from
:mod:`geodistill.studio`; the training jobs from :mod:`geodistill.engine.jobs`. The core's errors become
``gr.Error`` messages.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import random
import re
from pathlib import Path

import gradio as gr
import numpy as np

from geodistill import keys, settings, studio
from geodistill.config import ConfigError, ExperimentConfig, load_config
from geodistill.data import samples as bundled
from geodistill.data.pairs import MPP_MAX, MPP_MIN, GeoReference, load_panorama, load_satellite, make_sample
from geodistill.data.vigor import VigorDataset
from geodistill.engine.jobs import CANCELLING, JobManager
from geodistill.errors import GeoDistillError
from geodistill.engine.tasks.distill import resolve_init_checkpoint
from geodistill.evaluation import evaluate_localizer, perturb_heading, yaw_for_query
from geodistill.pathpolicy import PathPolicy
from geodistill.viz import panels, plots, webmap

logger = logging.getLogger("geodistill.app")

COMPUTE = "compute"          # one concurrency group, limit 1, for every handler that runs a model
MAX_UPLOAD_MB = 25
UNTRAINED = studio.UNTRAINED  # model choice without a checkpoint (pretrained backbone, random decoders)
SOURCES = ["bundled sample", "VIGOR root", "upload"]
TASKS = [("weak baseline", "weak"), ("GeoDistill (from a checkpoint)", "distill"), ("orientation", "orientation")]
RECIPES_DIR = settings.REPO_ROOT / "training" / "configs"
EMPTY_MAP_MESSAGE = "Localize a sample in the Explore tab to see it on the map."

JOBS = JobManager()


PATHS = PathPolicy()  # the server folders the path fields may name (``python app.py --allow-path DIR`` adds more)
UPLOAD_DIR = Path(gr.utils.get_upload_folder())


def allow_paths(folders: list[str]) -> None:
    """Let the path fields also name these server folders (``--allow-path``)."""
    for folder in folders:
        PATHS.allow(folder)


def shown(text: str) -> str:
    """A message as the page may show it: server paths relative to the allowed roots, an upload by its file name
    (never the server's temp folder), and HTML escaped (so ``<City>/`` is text, not a tag)."""
    text = re.sub(re.escape(str(UPLOAD_DIR)) + r"/[^/\s]+/", "", str(text))
    return html.escape(PATHS.redact(text), quote=False)


class ShownError(gr.Error):
    """A message already made fit for the page by :func:`shown` (so nested handlers do not escape it twice)."""


def user_errors(handler):
    """Show the core's errors as ``gr.Error`` messages (never a traceback in the page), escaped and without server
    paths (:func:`shown`)."""

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except ShownError:
            raise
        except gr.Error as error:
            raise ShownError(shown(error.message)) from error
        except (GeoDistillError, ConfigError, ValueError, FileNotFoundError) as error:
            raise ShownError(shown(str(error))) from error
        except Exception as error:
            logger.exception("unexpected error in %s", handler.__name__)
            raise ShownError(shown(f"unexpected {type(error).__name__}: {error} (details in the server log)")) from error

    return wrapped


def _model(choice: str | None) -> str:
    """A model choice as :func:`geodistill.studio.teacher_and_student` takes it; a checkpoint path must lie in an
    allowed folder (relative names resolve under the runs root, ``checkpoints/...`` under the checkpoints root)."""
    if not choice or choice == UNTRAINED or choice.startswith(studio.SHIPPED_PREFIX):
        return choice or UNTRAINED
    return str(PATHS.resolve(choice, "checkpoint", default_root=settings.runs_dir))


def model_choices() -> list[tuple[str, str]]:
    """(label, value) of every model the app can use: shipped, finished runs, and the untrained fallback."""
    choices = [(f"shipped: {name}", studio.shipped_choice(name)) for name in studio.SHIPPED_LOCALIZERS
               if studio.shipped_checkpoint(name)]
    choices += [(f"run: {run.name}", PATHS.display(run.path)) for run in JOBS.list_runs()
                if JOBS.checkpoint(run.name) and run.task != "orientation"]
    return choices + [("untrained (no checkpoint)", UNTRAINED)]


HEADING_LABELS = {"45": "estimate within ±45° (orientation model)", "full": "unknown: estimate on the full circle",
                  "aligned": "north-aligned: no estimate"}


def heading_choices() -> list[tuple[str, str]]:
    """The heading choices of the Explore tab: the full-circle estimate only where its model is shipped."""
    return [(HEADING_LABELS[mode], mode) for mode in studio.heading_modes()]


def startup_message() -> str:
    if studio.shipped_checkpoint(studio.DEFAULT_LOCALIZER):
        return "Using the shipped GeoDistill student (and teacher/orientation models where shipped)."
    return (f"**No trained checkpoint in `{settings.checkpoints_dir()}`** (the checkpoints folder; "
            "`GEODISTILL_CHECKPOINTS` chooses another). The app uses an untrained model (pretrained backbone, "
            "random decoders), so its heatmaps are not meaningful yet; train one in the Train tab.")


# ---- Explore -------------------------------------------------------------------------------------------------


def _sample_names() -> list[str]:
    return bundled.list_samples()


def _checked_upload(path: str | None, what: str) -> str:
    if not path:
        raise gr.Error(f"upload the {what} first")
    size_mb = Path(path).stat().st_size / 2**20
    if size_mb > MAX_UPLOAD_MB:
        raise gr.Error(f"the {what} is {size_mb:.1f} MB; the limit is {MAX_UPLOAD_MB} MB")
    return path


def _dataset_root(text: str | None) -> Path:
    """A VIGOR-layout root typed by the user; relative names resolve under the data root, as on the command line,
    and the folder must lie in an allowed one (:data:`PATHS`)."""
    if not (text or "").strip():
        raise gr.Error("enter the folder of a VIGOR-layout dataset (for example synthetic/tiny under the data root)")
    return PATHS.resolve(text, "dataset root")


GEOREFERENCE_FIELDS = ("Tile centre lat", "Tile centre lon", "Metres per pixel", "zoom")


def _number(value, field: str) -> float | None:
    """A georeference field: empty means not given (never 0); text must be a number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except ValueError:
        raise gr.Error(f"{field}: {value!r} is not a number") from None
    if not np.isfinite(number):
        raise gr.Error(f"{field}: {value!r} is not a finite number")
    return number


def upload_georeference(lat, lon, mpp, zoom) -> GeoReference:
    """The georeference of an uploaded tile. Empty lat and lon: no georeference (pixel and metre output only); the
    scale (m/px, or zoom with lat/lon) is needed either way. A missing field is named."""
    lat, lon, mpp, zoom = (_number(v, f) for v, f in zip((lat, lon, mpp, zoom), GEOREFERENCE_FIELDS))
    if (lat is None) != (lon is None):
        missing = GEOREFERENCE_FIELDS[0] if lat is None else GEOREFERENCE_FIELDS[1]
        raise gr.Error(f"{missing} is empty: give both tile-centre coordinates, or neither (no georeference: the "
                       "prediction is given in pixels and metres only)")
    if mpp is None and zoom is None:
        raise gr.Error(f"Metres per pixel is empty: give the tile's scale ({MPP_MIN:g}-{MPP_MAX:g} m/px), or a zoom "
                       "level with the tile-centre lat/lon")
    return GeoReference(lat=lat, lon=lon, meters_per_pixel=mpp, zoom=zoom)


@user_errors
def load_sample(source: str, name: str, vigor_root: str, area: str, split: str, index: float,
                pano_file: str | None, sat_file: str | None, lat: str | float | None, lon: str | float | None,
                mpp: str | float | None, zoom: str | float | None, hfov: str | float | None) -> tuple[dict, str]:
    """Load the chosen sample; returns (sample, a one-line description). The upload's georeference and FoV fields
    are text (or numbers); empty means not given."""
    if source == "bundled sample":
        if not name:
            raise gr.Error("choose a bundled sample")
        return bundled.load_sample(name), f"Bundled sample `{name}`."
    if source == "VIGOR root":
        root = _dataset_root(vigor_root)
        dataset = VigorDataset(root, area=area, split=split)
        if not 0 <= int(index) < len(dataset):
            raise gr.Error(f"index {int(index)} is outside the {split} split (0..{len(dataset) - 1})")
        return dataset[int(index)], f"{shown(PATHS.display(root))} {area}/{split} #{int(index)} of {len(dataset)}."
    pano = load_panorama(_checked_upload(pano_file, "panorama"), hfov_deg=_number(hfov, "horizontal FoV"))
    sat = load_satellite(_checked_upload(sat_file, "satellite tile"))
    georef = upload_georeference(lat, lon, mpp, zoom)
    where = "" if georef.latlon else " No georeference: the prediction is given in pixels and metres only."
    return make_sample(pano, sat, georef), f"Uploaded pair.{where}"


@user_errors
def load_bundled(name: str) -> tuple[dict, str, str]:
    """Load a bundled sample by name; returns (sample, description, the source radio's value)."""
    sample, info = load_sample(SOURCES[0], name, "", "cross", "test", 0, None, None, None, None, None, None, None)
    return sample, info, SOURCES[0]


@user_errors
def localize(sample: dict | None, choice: str, limited: bool, fov_deg: float, fov_center_deg: float,
             heading: str = "45") -> dict:
    """Teacher on the full panorama, student on the limited FoV; returns {"teacher", "student"} predictions."""
    if not sample:
        raise gr.Error("load a sample first")
    teacher, student = studio.teacher_and_student(_model(choice), heading)
    student_fov = float(fov_deg) if limited and fov_deg < 360 else None
    return {"teacher": teacher.predict(sample),
            "student": student.predict(sample, fov_deg=student_fov, fov_center_deg=float(fov_center_deg))}


@user_errors
def render(sample: dict | None, predictions: dict | None, opacity: float, show_fov: bool):
    """All drawings of the Explore tab (and the map) from the state."""
    if not sample or not predictions:
        raise gr.Error("load a sample and localize it first")
    view = panels.explore_view(sample, predictions["student"], predictions["teacher"], opacity, show_fov)
    return view.panorama, view.teacher, view.student, view.difference, view.bev, view.summary


@user_errors
def render_map(sample: dict | None, predictions: dict | None, which: str, online_tiles: bool) -> str:
    if not sample or not predictions:
        return webmap.message_map(EMPTY_MAP_MESSAGE)
    prediction = predictions["teacher" if which == "teacher" else "student"]
    latlon = np.asarray(sample.get(keys.LATLON_SAT, [np.nan, np.nan]), dtype=np.float64)
    if not np.isfinite(latlon).all():
        return webmap.message_map("This sample has no georeference (tile-centre lat/lon), so it has no map.")
    return webmap.localization_map(sample[keys.SAT], latlon, prediction.meters_per_pixel, prediction.prob_on_tile,
                                   prediction.uv, prediction.uv_gt, panels.display_heading(prediction),
                                   online_tiles=online_tiles, heatmap_label=f"{which} heatmap")


def random_fov() -> tuple[float, float]:
    return float(random.choice(range(60, 271, 15))), float(random.randrange(-180, 180, 5))


# ---- Train ---------------------------------------------------------------------------------------------------


def recipe_files() -> list[str]:
    return sorted(p.name for p in RECIPES_DIR.glob("*.yaml")) if RECIPES_DIR.is_dir() else []


@user_errors
def recipe_values(recipe: str) -> list:
    """The Train form's values as a recipe sets them (same order as :func:`build_train_config`'s arguments)."""
    config = load_config(RECIPES_DIR / recipe) if recipe else ExperimentConfig()
    return [config.train.task, config.distill.init_checkpoint or None,
            "synthetic" if config.data.synthetic.generate else "VIGOR root", config.data.root, config.data.area,
            config.train.device, config.train.epochs, config.train.batch_size, config.optim.lr,
            config.train.max_steps_per_epoch, config.distill.fov.min_deg, config.distill.fov.max_deg,
            config.distill.tau_teacher, config.distill.tau_student, config.distill.ema_momentum]


TRAIN_FORM_KEYS = ("train.task", "distill.init_checkpoint", "data.synthetic.generate", "data.root", "data.area",
                   "train.device", "train.epochs", "train.batch_size", "optim.lr", "train.max_steps_per_epoch",
                   "distill.fov.min_deg", "distill.fov.max_deg", "distill.tau_teacher", "distill.tau_student",
                   "distill.ema_momentum")


def train_overrides(task: str, init_checkpoint: str, dataset: str, data_root: str, area: str, device: str,
                    epochs: float, batch_size: float, lr: float, max_steps: float, fov_min: float, fov_max: float,
                    tau_teacher: float, tau_student: float, ema: float) -> list[str]:
    """The Train form as ``key=value`` overrides of the recipe (values JSON-quoted, so a path stays a string); the
    starting checkpoint only for GeoDistill, the data root only when one is typed."""
    values = (task, (init_checkpoint or "") if task == "distill" else "", dataset == "synthetic", (data_root or "").strip(), area, device,
              int(epochs), int(batch_size), float(lr), int(max_steps), float(fov_min), float(fov_max),
              float(tau_teacher), float(tau_student), float(ema))
    return [f"{key}={json.dumps(value)}" for key, value in zip(TRAIN_FORM_KEYS, values)
            if not (key in ("data.root", "distill.init_checkpoint") and value == "")]


@user_errors
def build_train_config(recipe: str, task: str, init_checkpoint: str, dataset: str, data_root: str, area: str,
                       device: str, epochs: float, batch_size: float, lr: float, max_steps: float, fov_min: float,
                       fov_max: float, tau_teacher: float, tau_student: float, ema: float) -> ExperimentConfig:
    """The ExperimentConfig the Train tab's widgets describe: :func:`load_config` of the recipe with the widgets'
    values as ``key=value`` overrides (the same layering as ``python -m geodistill train``)."""
    if task == "distill" and not init_checkpoint:
        raise gr.Error("GeoDistill starts from a weak-baseline checkpoint: choose one")
    if fov_min > fov_max:
        raise gr.Error(f"the smallest FoV ({fov_min:g}°) is larger than the largest ({fov_max:g}°)")
    if task == "distill" and init_checkpoint.startswith(studio.SHIPPED_PREFIX):
        init_checkpoint = str(studio.shipped_checkpoint(init_checkpoint.removeprefix(studio.SHIPPED_PREFIX)) or "")
    overrides = train_overrides(task, init_checkpoint, dataset, data_root, area, device, epochs, batch_size, lr,
                                max_steps, fov_min, fov_max, tau_teacher, tau_student, ema)
    config = load_config(RECIPES_DIR / recipe if recipe else None, overrides)
    if task == "distill":
        what, typed = "checkpoint to start GeoDistill from", config.distill.init_checkpoint
        as_typed = Path(typed).expanduser()
        if as_typed.is_absolute() or as_typed.exists():  # checked before it is looked at: no probing of the server
            PATHS.check(as_typed, what, shown=typed)
        PATHS.check(resolve_init_checkpoint(typed), what, shown=typed)
    root = PATHS.check(settings.resolve_path(config.data.root, settings.data_dir()), "data root",
                       shown=config.data.root)
    if dataset == "VIGOR root" and not root.is_dir():
        raise gr.Error(f"VIGOR root not found: {config.data.root}")
    return config


@user_errors
def start_training(name: str, gpus: float, *form):
    config = build_train_config(*form)
    run_name = name.strip() or JOBS.unique_name(f"{Path(form[0] or 'run').stem}-{config.train.task}")
    status = JOBS.start(config, run_name, gpus=int(gpus))
    return gr.update(choices=[r.name for r in JOBS.list_runs()], value=status.name), shown(status.summary())


def _progress_html(status) -> str:
    percent = 100 * status.progress
    return (f'<div id="run-progress" data-state="{status.state}"><progress value="{percent:.1f}" max="100" '
            f'style="width:100%"></progress><div>{shown(status.summary())}</div></div>')


def poll_run(name: str | None, drawn: tuple | None):
    """Timer tick: status, progress bar, log, and the curves when new events arrived (``drawn``: the (run, event
    count) the curves show)."""
    if not name:
        return "Start a run or choose one.", "", "", gr.skip(), drawn
    try:
        events = JOBS.events(name)
        status = JOBS.status(name, events)
    except GeoDistillError as error:
        return shown(str(error)), "", "", gr.skip(), drawn
    key = (name, len(events))
    curves = plots.training_curves(events, title=name) if key != drawn else gr.skip()
    return f"**{status.state}** · checkpoints: {', '.join(status.checkpoints) or 'none yet'}", \
        _progress_html(status), PATHS.redact(JOBS.log_tail(name, 60)), curves, key


@user_errors
def cancel_run(name: str | None) -> str:
    if not name:
        raise gr.Error("choose a run to cancel")
    already_asked = JOBS.status(name).state == CANCELLING  # a second Cancel stops it at once
    return shown(JOBS.cancel(name, force=already_asked).summary())


@user_errors
def resume_run(name: str | None, gpus: float) -> str:
    if not name:
        raise gr.Error("choose a run to resume")
    return shown(JOBS.launch(name, gpus=int(gpus), resume=True).summary())


@user_errors
def use_run_in_explore(name: str | None):
    if not name or JOBS.checkpoint(name) is None:
        raise gr.Error("this run has no best/ checkpoint yet")
    value = PATHS.display(JOBS.run_dir(name).path)
    return gr.update(choices=model_choices(), value=value), gr.update(choices=model_choices(), value=value), \
        gr.Tabs(selected="explore")


def refresh_lists():
    runs = [r.name for r in JOBS.list_runs()]
    return gr.update(choices=runs), gr.update(choices=model_choices()), gr.update(choices=model_choices())


# ---- Evaluate ------------------------------------------------------------------------------------------------


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


@user_errors
def evaluate(choice: str, data_root: str, area: str, split: str, limit: float, fov_deg: float, compare: bool,
             orientation: str = "aligned", progress=gr.Progress()):
    """Metrics table, error CDF and the worst cases of the student (and the teacher when asked).

    ``orientation`` is the protocol's setting (aligned, 45, unknown): the models are loaded with the heading mode
    of that setting (aligned: no orientation model), so the numbers equal ``python -m geodistill evaluate``'s.
    """
    teacher, student = studio.teacher_and_student(_model(choice), studio.HEADING_OF_SETTING[orientation])
    models = {"student": student, **({"teacher": teacher} if compare and teacher is not student else {})}
    dataset = studio.evaluation_dataset(student, _dataset_root(data_root), area, split)
    fov = None if fov_deg >= 360 else float(fov_deg)
    results, table = {}, []
    for label, model in models.items():
        results[label] = evaluate_localizer(model, dataset, fov_deg=fov, orientation=orientation,
                                            limit=int(limit) or None,
                                            setting={"area": area, "split": split, "checkpoint": choice},
                                            progress=lambda done, total, label=label: progress(
                                                (done, total), desc=f"evaluating the {label}"))
        summary = results[label].to_dict()
        for city, stats in [("all", summary), *summary["per_city"].items()]:
            table.append([label, city, stats["n"], *[_rounded(stats.get(k), 2) for k in ("mean_m", "median_m")],
                          *[_rounded(100 * stats[k], 1) if stats.get(k) is not None else None
                            for k in ("recall_1m", "recall_3m", "recall_5m")]])
    worst = sorted(results["student"].rows, key=lambda row: -row["error_m"])[:6]
    seed = results["student"].setting["seed"]
    samples = [perturb_heading(dataset[row["index"]], yaw_for_query(seed, row["index"], orientation)) for row in worst]
    centres = [row["fov_center_deg"] or 0.0 for row in worst]
    gallery = [(panels.case_thumbnail(sample, prediction), f"{row['panorama']} · {row['error_m']:.1f} m")
               for row, sample, prediction in zip(worst, samples, student.predict_batch(
                   samples, fov, centres, estimate_heading=orientation != "aligned"))]
    cdf = plots.error_cdf({label: result.errors_m for label, result in results.items()})
    return table, cdf, gallery, f"`{results['student'].setting_tag()}`"


def _samples_root() -> Path:
    return bundled.samples_root()

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
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from geodistill import keys, settings, studio
from geodistill.config import ConfigError, ExperimentConfig, load_config
from geodistill.data import samples as bundled
from geodistill.data.georeference import geotiff_georeference, parse_latlon, parse_number, split_pair, \
    world_file_georeference
from geodistill.data.pairs import MPP_MAX, MPP_MIN, GeoReference, load_panorama, load_satellite, make_sample
from geodistill.data.vigor import VigorDataset
from geodistill.engine.jobs import CANCELLING, JobManager
from geodistill.errors import GeoDistillError
from geodistill.engine.tasks.distill import resolve_init_checkpoint
from geodistill.evaluation import evaluate_localizer, perturb_heading, yaw_for_query
from geodistill.pathpolicy import PathPolicy
from geodistill.viz import panels, plots, webmap
from geodistill.viz.heatmap import PREDICTION_COLOUR, TEACHER_COLOUR

PANO_HEIGHT = 320            # the panorama height of an uploaded pair (make_sample's); big files decode near it

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


def heading_choices(choice: str | None = None) -> list[tuple[str, str]]:
    """The heading choices of the Explore tab for a model choice: the full-circle estimate only for a model that can
    make one (a CCVPE model, or any where the full-circle orientation model is shipped)."""
    return [(HEADING_LABELS[mode], mode) for mode in studio.heading_modes(_model_or_none(choice))]


def _model_or_none(choice: str | None) -> str | None:
    """:func:`_model`, or None for a path outside the allowed folders (its heading modes are a G2SWeakly model's)."""
    try:
        return _model(choice)
    except GeoDistillError:
        return None


def _radio_for(choices: list[tuple[str, str]], value: str | None, fallback: str):
    """A radio update with new choices that keeps ``value`` where it is still offered, else ``fallback``."""
    values = [mode for _, mode in choices]
    kept = value if value in values else (fallback if fallback in values else values[0])
    return gr.update(choices=choices, value=kept)


def heading_radio(choice: str | None, heading: str | None):
    """The Explore tab's heading radio after the model changed: the modes the new model can use."""
    return _radio_for(heading_choices(choice), heading, "45")


def startup_message() -> str:
    if studio.shipped_checkpoint(studio.DEFAULT_LOCALIZER):
        return (f"Using the shipped GeoDistill student `{studio.DEFAULT_LOCALIZER}` (and its teacher and the "
                "orientation model where shipped).")
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


def upload_georeference(tile_centre, mpp, zoom) -> GeoReference:
    """The georeference of an uploaded tile from its typed fields (read locale-tolerantly: a decimal comma is a
    decimal point, ambiguous input is refused). An empty tile centre: no georeference (pixel and metre output only);
    the scale (m/px, or a zoom with the centre) is needed either way, and a missing one is named."""
    centre = parse_latlon(tile_centre, "Tile centre (lat, lon)")
    mpp, zoom = parse_number(mpp, "Metres per pixel"), parse_number(zoom, "zoom")
    if mpp is None and zoom is None:
        raise gr.Error(f"Metres per pixel is empty: give the tile's scale ({MPP_MIN:g}-{MPP_MAX:g} m/px), or a zoom "
                       "level with the tile centre")
    return GeoReference(lat=centre and centre[0], lon=centre and centre[1], meters_per_pixel=mpp, zoom=zoom)


def _image_size(path: str) -> str:
    """``W×H px`` of an image file from its header alone (no decoding), or ``?`` when unreadable (the loader then
    says why)."""
    try:
        with Image.open(path) as image:
            return f"{image.size[0]}×{image.size[1]} px"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return "?"


def _pixel(text: str | None, field: str) -> tuple[float, float] | None:
    pair = split_pair(text, field)
    return None if pair is None else (parse_number(pair[0], field), parse_number(pair[1], field))


@user_errors
def load_sample(source: str, name: str, vigor_root: str, area: str, split: str, index: float,
                pano_file: str | None, sat_file: str | None, tile_centre: str | None, mpp, zoom, hfov,
                gt_latlon: str | None = None, gt_pixel: str | None = None,
                progress=gr.Progress()) -> tuple[dict, str]:
    """Load the chosen sample; returns (sample, a one-line description). An upload's fields are typed text, read
    locale-tolerantly (empty means not given: no georeference is pixel and metre output only); its known true
    position (``gt_latlon`` or ``gt_pixel``, pixels of the tile file) gives the error in metres."""
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
    pano_path = _checked_upload(pano_file, "panorama")
    size = _image_size(pano_path)
    progress(0.1, desc=f"reading the panorama ({size})")
    pano = load_panorama(pano_path, hfov_deg=parse_number(hfov, "Pinhole photo FoV"), decode_height=PANO_HEIGHT)
    progress(0.6, desc="reading the satellite tile")
    sat = load_satellite(_checked_upload(sat_file, "satellite tile"))
    georef = upload_georeference(tile_centre, mpp, zoom)
    truth = parse_latlon(gt_latlon, "Known camera lat, lon")
    truth_px = _pixel(gt_pixel, "Known camera pixel (u, v)")
    progress(0.9, desc="preparing the pair")
    sample = make_sample(pano, sat, georef, pano_height=PANO_HEIGHT, gt_latlon=truth, gt_uv=truth_px)
    where = "" if georef.latlon else " No georeference: the prediction is given in pixels and metres only."
    known = " Known camera position given: the error is shown in metres." if truth or truth_px else ""
    return sample, f"Uploaded pair ({size} panorama).{where}{known}"


@user_errors
def load_bundled(name: str) -> tuple[dict, str, str]:
    """Load a bundled sample by name; returns (sample, description, the source radio's value)."""
    sample, info = load_sample(SOURCES[0], name, "", "cross", "test", 0, None, None, None, None, None, None)
    return sample, info, SOURCES[0]


NO_SAMPLE = "Load a sample first: pick a bundled sample, or load a VIGOR root or an upload."


@user_errors
def read_upload_georeference(sat_file: str | None, world_file: str | None):
    """The tile centre and m/px of an uploaded GeoTIFF tile, or of the tile with its world file; the fields are
    left as they are when neither holds a georeference. Returns (tile centre, m/px, a note)."""
    if not sat_file:
        return gr.skip(), gr.skip(), "Upload the tile, then its world file (or a GeoTIFF tile alone)."
    if world_file:
        try:
            with Image.open(sat_file) as tile:
                size = tile.size
        except (OSError, SyntaxError) as error:
            raise gr.Error(f"{Path(sat_file).name}: not a readable image") from error
        georef = world_file_georeference(world_file, size)
    else:
        georef = geotiff_georeference(sat_file)
    if georef is None:
        return gr.skip(), gr.skip(), ""
    return georef.latlon_text(), f"{georef.meters_per_pixel:.4f}", \
        f"Georeference read from {georef.source}: centre {georef.latlon_text()}, {georef.meters_per_pixel:.4f} m/px."


@user_errors
def require_sample(sample: dict | None) -> None:
    """The Localize button's check: an explicit request without a sample gets the hint as a message."""
    if not sample:
        raise gr.Error(NO_SAMPLE)


@user_errors
def localize(sample: dict | None, choice: str, limited: bool, fov_deg: float, fov_center_deg: float,
             heading: str = "45") -> dict | None:
    """Teacher on the full panorama, student on the limited FoV; returns {"teacher", "student", "heading"} (the
    predictions and the heading mode asked for). Without a sample there is nothing to do (None: a control moved
    before a sample was loaded is not an error)."""
    if not sample:
        return None
    teacher, student = studio.teacher_and_student(_model(choice), heading)
    student_fov = float(fov_deg) if limited and fov_deg < 360 else None
    arguments = studio.heading_arguments(heading)
    return {"teacher": teacher.predict(sample, **arguments),
            "student": student.predict(sample, fov_deg=student_fov, fov_center_deg=float(fov_center_deg), **arguments),
            "heading": heading}


@user_errors
def render(sample: dict | None, predictions: dict | None, opacity: float, show_fov: bool, show_field: bool = False):
    """All drawings of the Explore tab (and the map) from the state; nothing changes before a localization.
    ``show_field`` draws a CCVPE model's heading field on the heatmaps."""
    if not sample or not predictions:
        return (gr.skip(),) * 6
    view = panels.explore_view(sample, predictions["student"], predictions["teacher"], opacity, show_fov,
                               heading_mode=predictions.get("heading"), show_field=bool(show_field))
    return view.panorama, view.teacher, view.student, view.difference, view.bev, view.summary


@user_errors
def export_result(sample: dict | None, predictions: dict | None, model: str) -> list[str]:
    """The localized sample as a JSON file, and as GeoJSON when the tile is georeferenced."""
    if not sample or not predictions:
        raise gr.Error("localize a sample first, then export it")
    models = {label: predictions[label] for label in ("teacher", "student")}
    stem = Path(str(sample.get(keys.PANO_NAME) or "result")).stem or "result"
    folder = Path(tempfile.mkdtemp(prefix="geodistill-export-"))
    files = [folder / f"{stem}.json"]
    files[0].write_text(json.dumps(studio.result_document(sample, models, model), indent=2) + "\n")
    if sample.get(keys.LATLON_SAT) is not None and np.isfinite(np.asarray(sample[keys.LATLON_SAT], float)).all():
        files.append(folder / f"{stem}.geojson")
        files[1].write_text(json.dumps(studio.result_geojson(sample, models, model), indent=2) + "\n")
    return [str(path) for path in files]


def _marker(label: str, prediction, colour: tuple[int, int, int]) -> webmap.MapMarker:
    heading = panels.heading_text(prediction, None)
    details = [f"error {prediction.error_m:.2f} m" if prediction.error_m is not None else "error: unknown (no truth)",
               f"heading {heading}", f"confidence: {prediction.confidence_text}"]
    return webmap.MapMarker(label, prediction.uv, panels.display_heading(prediction), details, colour)


@user_errors
def render_map(sample: dict | None, predictions: dict | None, online_tiles: bool) -> str:
    """The map of the latest localization: both heatmaps as layers of the map's own switcher (so switching keeps
    the zoom and the toggles), the student's and the teacher's predictions with popups, a legend."""
    if not sample or not predictions:
        return webmap.message_map(EMPTY_MAP_MESSAGE)
    student, teacher = predictions["student"], predictions["teacher"]
    latlon = np.asarray(sample.get(keys.LATLON_SAT, [np.nan, np.nan]), dtype=np.float64)
    if not np.isfinite(latlon).all():
        return webmap.message_map("This sample has no georeference (tile-centre lat/lon), so it has no map.")
    markers = [_marker("student prediction", student, PREDICTION_COLOUR)]
    if teacher is not student:
        markers.append(_marker("teacher prediction", teacher, TEACHER_COLOUR))
    return webmap.localization_map(sample[keys.SAT], latlon, student.meters_per_pixel, uv_gt=student.uv_gt,
                                   online_tiles=online_tiles, markers=markers,
                                   heatmaps={"student heatmap": student.prob_on_tile,
                                             "teacher heatmap": teacher.prob_on_tile})


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


def poll_run(name: str | None, *on_page):
    """Timer tick: the status line, progress bar, log and curves key of the run, each sent only when it differs from
    ``on_page`` (what the page holds; ``gr.skip()`` otherwise). The app keeps them in ``gr.State``s whose change
    redraws one visible component each, so nothing on the page is redrawn, or flickers, while it stays the same."""
    if not name:
        now = ("Start a run or choose one.", "", "", None)
    else:
        try:
            events = JOBS.events(name)
            status = JOBS.status(name, events)
            now = (f"**{status.state}** · checkpoints: {', '.join(status.checkpoints) or 'none yet'}",
                   _progress_html(status), PATHS.redact(JOBS.log_tail(name, 60)), (name, len(events)))
        except GeoDistillError as error:
            now = (shown(str(error)), "", "", None)
    on_page = on_page + (object(),) * (len(now) - len(on_page))
    return tuple(value if value != before else gr.skip() for value, before in zip(now, on_page))


def run_curves(curves_key: tuple | None):
    """The loss and validation curves of the run of ``curves_key`` ((name, number of events)), None without a run."""
    if not curves_key:
        return None
    name = curves_key[0]
    try:
        return plots.training_curves(JOBS.events(name), title=name)
    except GeoDistillError:
        return None


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
    """The lists of runs and models as they are on disk now: (runs, Explore's models, Evaluate's models, the
    checkpoints GeoDistill can start from)."""
    runs = [r.name for r in JOBS.list_runs()]
    models = model_choices()
    return gr.update(choices=runs), gr.update(choices=models), gr.update(choices=models), \
        gr.update(choices=[choice for choice in models if choice[1] != UNTRAINED])


# ---- Evaluate ------------------------------------------------------------------------------------------------


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


@user_errors
def evaluate(choice: str, data_root: str, area: str, split: str, limit: float, fov_deg: float, compare: bool,
             orientation: str = "aligned", progress=gr.Progress()):
    """Metrics table, error CDF, the worst cases of the student (and the teacher when asked), the setting, the
    per-sample CSV of the student and the worst cases' samples (for "open in Explore").

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
    gallery = [(panels.case_thumbnail(sample, prediction), case_caption(row))
               for row, sample, prediction in zip(worst, samples, student.predict_batch(
                   samples, fov, centres, **studio.heading_arguments(studio.HEADING_OF_SETTING[orientation])))]
    cdf = plots.error_cdf({label: result.errors_m for label, result in results.items()})
    folder = Path(tempfile.mkdtemp(prefix="geodistill-evaluation-"))
    csv_path = results["student"].write_csv(folder / f"per_sample_{area}_{split}_{orientation}.csv")
    cases = [{"sample": sample, "caption": case_caption(row), "fov_deg": fov, "fov_center_deg": centre,
              "model": choice, "heading": studio.HEADING_OF_SETTING[orientation]}
             for row, sample, centre in zip(worst, samples, centres)]
    return table, cdf, gallery, f"`{results['student'].setting_tag()}`", str(csv_path), cases


def case_caption(row: dict) -> str:
    """A worst case's caption, the error first (a long panorama name is cut at the end, never the error)."""
    return f"{row['error_m']:.1f} m · {row['panorama']}"


def open_case(cases: list | None, evt: gr.SelectData):
    """A worst case of the Evaluate tab into Explore: its sample (as evaluated, heading included), its FoV, model and
    heading mode, and the Explore tab selected. Returns (sample, description, limit FoV, FoV width, FoV centre,
    model, heading mode, tabs)."""
    if not cases or evt.index is None or not 0 <= int(evt.index) < len(cases):
        raise gr.Error("evaluate first, then choose one of the worst cases")
    case = cases[int(evt.index)]
    fov = case["fov_deg"]
    return case["sample"], f"Worst case from Evaluate: {case['caption']}.", fov is not None, \
        fov if fov is not None else gr.skip(), case["fov_center_deg"], case["model"], case["heading"], \
        gr.Tabs(selected="explore")


def orientation_choices(choice: str | None = None) -> list[tuple[str, str]]:
    """The Evaluate tab's heading settings: those the model of ``choice`` supports (``geodistill.studio``)."""
    labels = {"aligned": "north-aligned (the protocol's default)", "45": "turned within ±45° (estimated)",
              "unknown": "unknown heading (estimated on the full circle)"}
    return [(labels[setting], setting) for setting in studio.orientation_settings(_model_or_none(choice))]


def orientation_radio(choice: str | None, orientation: str | None):
    """The Evaluate tab's heading radio after the model changed: the settings the new model supports."""
    return _radio_for(orientation_choices(choice), orientation, "aligned")


def _samples_root() -> Path:
    return bundled.samples_root()

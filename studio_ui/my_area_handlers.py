"""The handlers of the "My area" tab (``studio_ui/my_area.py``): refine an area's GPS positions in the background,
map them, open one in Explore, download the results, adapt the model to the area.

Inputs are folders on the server (confined by ``app_handlers.PATHS``, like every path field) or uploads: a zip of
panoramas (with an optional GPS CSV inside) and a GeoTIFF, extracted safely (no path outside the folder, no links,
size and count limits) into a folder of this browser session under ``<data>/my_area/``. A run is
:func:`geodistill.area.refine.refine_area` in a thread per session, polled by a generator handler; Cancel asks it to
stop between batches (the output then holds what is done, and the same run again resumes it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import gradio as gr
import numpy as np

import app_handlers as handlers
from app_handlers import JOBS, PANO_HEIGHT, UNTRAINED, shown, user_errors
from geodistill import settings, studio
from geodistill.area.dataset import make_dataset
from geodistill.area.orthophoto import open_orthophoto
from geodistill.area.refine import RefineSummary, refine_area
from geodistill.area.results import write_results
from geodistill.data.label_source import AREA_DATASET_FILE
from geodistill.data.pairs import GeoReference, load_panorama, make_sample
from geodistill.engine.adapt import build_adapt_config
from geodistill.geometry.panorama import roll_panorama
from geodistill.viz import webmap
from geodistill.viz.area_map import area_map

SOURCES = ["folders on the server", "upload"]
AREA_FOLDER = "my_area"             # under the data root: one folder per browser session
PANO_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_ZIP_ENTRIES = 5000
MAX_EXTRACTED_MB = 2048             # the whole zip, uncompressed
OVERVIEW_PX = 768                   # side of the orthophoto picture under the map
POLL_S = 0.5
HEADING_MODE = "45"                 # the orientation model refine uses by default (where shipped)
EMPTY_MESSAGE = "Run the localization to see every panorama's GPS → refined position here."


@dataclass
class AreaRun:
    """One refine run of a session, in a thread."""

    stop: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    total: int = 0
    summary: RefineSummary | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = None


RUNS: dict[str, AreaRun] = {}       # by session
_RUNS_LOCK = threading.Lock()


def session_folder(request: gr.Request | None) -> Path:
    """``<data>/my_area/<session>/`` of this browser session."""
    session = re.sub(r"[^A-Za-z0-9_-]", "", str(getattr(request, "session_hash", "") or "")) or "local"
    return settings.data_dir() / AREA_FOLDER / session[:40]


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:12]


def _file_digest(*paths: str) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:12]


# ---- inputs --------------------------------------------------------------------------------------------------


def _copy_limited(source, target: Path, budget: list[int], zip_name: str) -> None:
    """Copy a zip entry's stream, counting its real size against ``budget`` (bytes left)."""
    with open(target, "wb") as out:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise gr.Error(f"{zip_name}: more than {MAX_EXTRACTED_MB} MB uncompressed; put a folder this big on "
                               "the server instead")
            out.write(chunk)


def extract_panoramas(zip_path: str, folder: Path) -> tuple[Path, Path | None]:
    """The panoramas of an uploaded zip in ``folder/panos`` (flat, by file name) and its GPS CSV, if it holds one.

    Raises:
        gr.Error: not a zip, an entry outside the folder or a link, two files of one name, too many or too big
            entries, two CSVs, no panorama.
    """
    zip_name = Path(zip_path).name
    panos = folder / "panos"
    if panos.exists():
        shutil.rmtree(panos)
    panos.mkdir(parents=True)
    gps_csv, budget, names = None, [MAX_EXTRACTED_MB * 2**20], set()
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise gr.Error(f"{zip_name}: not a readable zip file ({error})") from error
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise gr.Error(f"{zip_name}: {len(entries)} entries; at most {MAX_ZIP_ENTRIES} are accepted")
        for entry in entries:
            path = PurePosixPath(entry.filename.replace("\\", "/"))
            if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", entry.filename):
                raise gr.Error(f"{zip_name}: entry {entry.filename!r} points outside the folder; nothing was used")
            if (entry.external_attr >> 16) & 0o170000 == 0o120000:
                raise gr.Error(f"{zip_name}: entry {entry.filename!r} is a symbolic link; nothing was used")
            if entry.is_dir() or path.name.startswith(".") or "__MACOSX" in path.parts:
                continue
            suffix = path.suffix.lower()
            if suffix not in (*PANO_SUFFIXES, ".csv"):
                continue
            if suffix == ".csv" and gps_csv is not None:
                raise gr.Error(f"{zip_name}: two CSV files ({gps_csv.name}, {path.name}); keep the one GPS CSV")
            if path.name.lower() in names:
                raise gr.Error(f"{zip_name}: two files named {path.name}; panorama names must be unique")
            names.add(path.name.lower())
            target = folder / path.name if suffix == ".csv" else panos / path.name
            with archive.open(entry) as source:
                _copy_limited(source, target, budget, zip_name)
            gps_csv = target if suffix == ".csv" else gps_csv
    if not any(panos.iterdir()):
        raise gr.Error(f"{zip_name}: no panorama (.jpg, .jpeg, .png) in the zip")
    return panos, gps_csv


@dataclass(frozen=True)
class AreaInputs:
    ortho: Path
    panos: Path
    gps_csv: Path | None


def _server_inputs(ortho_text: str, panos_text: str, gps_text: str | None) -> AreaInputs:
    ortho = handlers.PATHS.resolve(ortho_text, "orthophoto (GeoTIFF or XYZ tile folder)")
    panos = handlers.PATHS.resolve(panos_text, "panorama folder")
    gps = handlers.PATHS.resolve(gps_text, "GPS CSV") if (gps_text or "").strip() else None
    for path, what in ((ortho, "orthophoto"), (panos, "panorama folder"), (gps, "GPS CSV")):
        if path is not None and not path.exists():
            raise gr.Error(f"{what} not found: {handlers.PATHS.display(path)}")
    return AreaInputs(ortho, panos, gps)


def _uploaded_inputs(zip_file: str | None, tif_file: str | None, folder: Path) -> AreaInputs:
    zip_path = handlers._checked_upload(zip_file, "zip of panoramas")
    tif_path = handlers._checked_upload(tif_file, "orthophoto (GeoTIFF)")
    if Path(tif_path).suffix.lower() not in (".tif", ".tiff"):
        raise gr.Error(f"{Path(tif_path).name}: the orthophoto upload must be a GeoTIFF (.tif, .tiff)")
    target = folder / f"upload-{_file_digest(zip_path, tif_path)}"
    panos, gps_csv = extract_panoramas(zip_path, target)
    ortho = target / f"orthophoto{Path(tif_path).suffix.lower()}"
    shutil.copyfile(tif_path, ortho)
    return AreaInputs(ortho, panos, gps_csv)


@user_errors
def area_inputs(source: str, ortho_text: str, panos_text: str, gps_text: str | None, zip_file: str | None,
                tif_file: str | None, folder: Path) -> AreaInputs:
    """The orthophoto, panorama folder and GPS CSV the form names: server paths (allowed folders only) or uploads."""
    if source == SOURCES[1]:
        return _uploaded_inputs(zip_file, tif_file, folder)
    return _server_inputs(ortho_text, panos_text, gps_text)


# ---- the run -------------------------------------------------------------------------------------------------


@user_errors
def _localizer(choice: str):
    """The deployed network of a model choice, with the default orientation model where one is shipped."""
    return studio.teacher_and_student(handlers._model(choice), HEADING_MODE)[1]


@user_errors
def _raise_shown(error: BaseException) -> None:
    raise error


def _start(inputs: AreaInputs, out: Path, localizer, sigma: float, run: AreaRun) -> None:
    def work() -> None:
        try:
            run.summary = refine_area(inputs.ortho, inputs.panos, out, localizer=localizer, gps_csv=inputs.gps_csv,
                                      prior_sigma_m=sigma, progress=_progress, should_stop=run.stop.is_set)
        except BaseException as error:  # shown to the user by the polling handler
            run.error = error

    def _progress(done: int, total: int) -> None:
        run.done, run.total = done, total

    run.thread = threading.Thread(target=work, name="my-area-refine", daemon=True)
    run.thread.start()


def progress_html(state: str, done: int, total: int, text: str) -> str:
    percent = 100.0 * done / total if total else 0.0
    return (f'<div id="area-progress" data-state="{state}"><progress value="{percent:.1f}" max="100" '
            f'style="width:100%"></progress><div>{text}</div></div>')


def _overview(ortho_path: Path) -> tuple[np.ndarray, list]:
    """A north-up picture of the whole orthophoto and its Leaflet bounds."""
    with open_orthophoto(ortho_path) as ortho:
        south, west, north, east = ortho.bounds_latlon()
        centre = ((south + north) / 2, (west + east) / 2)
        side_m = max((north - south) * 111_320.0, (east - west) * 111_320.0 * np.cos(np.radians(centre[0])))
        mpp = side_m / OVERVIEW_PX
        picture = ortho.cut_tile(*centre, OVERVIEW_PX, mpp)
    return picture, webmap.tile_bounds(np.array(centre), OVERVIEW_PX, mpp)


def _downloads(out: Path, records: list[dict], meta: dict) -> list[str]:
    """The GeoJSON and the CSV in a temporary folder the page may download from."""
    folder = Path(tempfile.mkdtemp(prefix="geodistill-my-area-"))
    geojson = folder / "refined.geojson"
    shutil.copyfile(out, geojson)
    return [str(geojson), str(write_results(folder / "refined.csv", records, meta))]


def _context(inputs: AreaInputs, summary: RefineSummary, choice: str, sigma: float) -> dict:
    """What "open in Explore" and "adapt" need of a finished run."""
    return {"ortho": str(inputs.ortho), "panos": str(inputs.panos),
            "gps_csv": None if inputs.gps_csv is None else str(inputs.gps_csv), "choice": choice, "sigma": sigma,
            "tile_px": summary.plan.size_px, "tile_mpp": summary.plan.meters_per_pixel,
            "records": {r["name"]: {k: r[k] for k in ("status", "prior_lat", "prior_lon", "heading_deg",
                                                        "heading_source", "shift_m", "confidence_text")}
                        for r in summary.records}}


def _finished(run: AreaRun, inputs: AreaInputs, out: Path, choice: str, sigma: float):
    summary = run.summary
    records = summary.records
    message = shown(summary.message())
    if summary.stopped:
        message += " Run it again with the same settings to continue where it stopped."
    problems = [r for r in records if r["status"] != "refined"]
    if problems:
        message += "<br>" + "<br>".join(shown(r["reason"] or r["status"]) for r in problems[:20])
        if len(problems) > 20:
            message += f"<br>… and {len(problems) - 20} more (all are in the download)"
    meta = {"settings": {"model": choice, "prior_sigma_m": sigma}, "search_radius_m": summary.plan.search_radius_m}
    picked = sorted(r["name"] for r in records if r["status"] in ("refined", "outside"))
    try:
        overview, bounds = _overview(inputs.ortho)
        drawn = area_map(records, overview, bounds)
    except ValueError as error:
        drawn = webmap.message_map(str(error))
    state = "stopped" if summary.stopped else "done"
    return (progress_html(state, summary.written, summary.total, message), drawn,
            _downloads(out, records, meta), gr.update(choices=picked, value=picked[0] if picked else None),
            _context(inputs, summary, choice, sigma))


def run_refine(source: str, ortho_text: str, panos_text: str, gps_text: str | None, zip_file: str | None,
               tif_file: str | None, choice: str, sigma: float | None, request: gr.Request = None):
    """Refine the area in a thread; yields (progress, map, downloads, entries, context) while it runs and at the end.
    One run per session; errors are shown as messages naming the file (never a traceback)."""
    folder = session_folder(request)
    with _RUNS_LOCK:
        running = RUNS.get(str(folder))
        if running is not None and running.thread is not None and running.thread.is_alive():
            raise gr.Error("a localization of this page is still running: wait for it, or cancel it")
        run = RUNS[str(folder)] = AreaRun()
    if sigma is None or not sigma > 0:
        raise gr.Error("the GPS error (prior sigma) must be a positive number of metres")
    inputs = area_inputs(source, ortho_text, panos_text, gps_text, zip_file, tif_file, folder)
    yield progress_html("loading", 0, 0, "loading the model…"), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    localizer = _localizer(choice)
    out = folder / f"refined-{_digest(inputs, choice, float(sigma))}.geojson"
    _start(inputs, out, localizer, float(sigma), run)
    while run.thread.is_alive():
        text = f"{run.done} of {run.total} panoramas" if run.total else "reading the panoramas' GPS positions…"
        if run.stop.is_set():
            text += " · stopping after the current batch"
        yield progress_html("running", run.done, run.total, text), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        time.sleep(POLL_S)
    if run.error is not None:
        _raise_shown(run.error)
    yield _finished(run, inputs, out, choice, float(sigma))


def cancel_refine(request: gr.Request = None) -> str:
    """Ask this session's run to stop after its current batch (the output keeps everything done)."""
    run = RUNS.get(str(session_folder(request)))
    if run is None or run.thread is None or not run.thread.is_alive():
        return progress_html("idle", 0, 0, "Nothing is running.")
    run.stop.set()
    return progress_html("stopping", run.done, run.total, "stopping after the current batch…")


# ---- open in Explore -----------------------------------------------------------------------------------------


@user_errors
def open_in_explore(name: str | None, context: dict | None):
    """A panorama of the run into Explore: the panorama (turned north by its refined heading when one is known) and
    the orthophoto tile the run cut around its GPS position, at the run's scale. Returns (sample, description,
    limit FoV, model, tabs)."""
    if not context:
        raise gr.Error("run the localization first, then choose a panorama")
    record = context["records"].get(name or "")
    if record is None or record["prior_lat"] is None:
        raise gr.Error(f"{name or 'no panorama'}: choose a panorama of the run with a GPS position")
    lat, lon = record["prior_lat"], record["prior_lon"]
    with open_orthophoto(context["ortho"]) as ortho:
        tile = ortho.cut_tile(lat, lon, context["tile_px"], context["tile_mpp"])
    pano = load_panorama(Path(context["panos"]) / name, decode_height=PANO_HEIGHT)
    turned = record["heading_deg"] is not None and record["heading_source"] != "assumed north"
    if turned:
        pano = dataclasses.replace(pano, image=roll_panorama(pano.image, -float(record["heading_deg"])))
    sample = make_sample(pano, tile, GeoReference(lat=lat, lon=lon, meters_per_pixel=context["tile_mpp"]),
                         pano_height=PANO_HEIGHT)
    where = (f"refined {record['shift_m']:.1f} m from its GPS position" if record["status"] == "refined"
             else "outside the orthophoto")
    info = (f"My area: `{html.escape(name)}` on the orthophoto tile around its GPS position ({where}"
            f"{', turned north by its heading' if turned else ''}).")
    return sample, info, False, context["choice"], gr.Tabs(selected="explore")


# ---- adapt ---------------------------------------------------------------------------------------------------


def _adapt_checkpoint(choice: str) -> str:
    if not choice or choice == UNTRAINED:
        raise gr.Error("adaptation starts from a trained model: choose a shipped model or a run, not the untrained one")
    if choice.startswith(studio.SHIPPED_PREFIX):
        return str(studio.shipped_checkpoint(choice.removeprefix(studio.SHIPPED_PREFIX)) or choice)
    return str(handlers._model(choice))


@user_errors
def start_adapt(context: dict | None, epochs: float, request: gr.Request = None, progress=gr.Progress()):
    """GeoDistill on the area (``adapt``): its dataset (``make-dataset``, labels = GPS, written once per input), then a
    distillation run of the job manager, followed in the Train tab. Returns (status, the Train tab's run list)."""
    if not context:
        raise gr.Error("run the localization first: adaptation uses its orthophoto, panoramas and model")
    checkpoint = _adapt_checkpoint(context["choice"])
    folder = session_folder(request)
    root = folder / f"dataset-{_digest(context['ortho'], context['panos'], context['gps_csv'])}"
    if not (root / AREA_DATASET_FILE).is_file():
        progress(0.1, desc="writing the area's dataset (tiles around every panorama)")
        make_dataset(context["ortho"], context["panos"], root, context["gps_csv"], progress=False)
    name = JOBS.unique_name(f"adapt-{Path(context['panos']).parent.name or 'area'}")
    config = build_adapt_config(checkpoint, root, name, epochs=max(1, int(epochs or 1)))
    status = JOBS.start(config, name)
    runs = [r.name for r in JOBS.list_runs()]
    return (f"{shown(status.summary())}. Follow it in the Train tab; when it is done, choose `runs/{name}` as the "
            "model here to localize with the adapted model.", gr.update(choices=runs, value=name))

"""The app's handlers, called directly (no server), on the bundled samples with the fallback model."""

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app
import app_handlers as handlers
from geodistill import settings, studio
from geodistill.config import ExperimentConfig
from geodistill.errors import DataError


@pytest.fixture(scope="module")
def sample_name():
    names = handlers._sample_names()
    assert names, "the bundled samples (assets/samples) are missing"
    return names[0]


@pytest.fixture(scope="module")
def localized(sample_name):
    sample, info, source = handlers.load_bundled(sample_name)
    return sample, handlers.localize(sample, handlers.UNTRAINED, True, 180.0, 30.0)


@pytest.mark.slow
def test_importing_app_starts_nothing():
    code = "import app; from geodistill import studio; print(len(studio.MODELS), app.build_demo is not None)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=str(handlers.settings.REPO_ROOT))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "True"]
    assert "Running on" not in result.stdout + result.stderr


def test_defaults_bind_to_localhost():
    args = app.parse_args([])
    assert (args.host, args.port, args.share) == ("127.0.0.1", 7860, "false")
    assert app.parse_args(["--host", "0.0.0.0", "--port", "9000"]).port == 9000


@pytest.mark.parametrize("port, message", [("99999", "between 1 and 65535"), ("0", "between 1 and 65535"),
                                           ("http", "expected a port number")])
def test_bad_port_is_a_usage_error(capsys, port, message):
    with pytest.raises(SystemExit) as stop:
        app.parse_args(["--port", port])
    assert stop.value.code == 2 and message in capsys.readouterr().err


class FakeDemo:
    """Stands in for the Blocks: records the launch, serves nothing."""

    def __init__(self):
        self.launched = None

    def launch(self, **kwargs):
        self.launched = kwargs
        return None, f"http://127.0.0.1:{kwargs['server_port']}/", None

    def block_thread(self):
        pass


def test_a_busy_port_moves_to_the_next_free_one_before_the_ui_is_built(capsys, monkeypatch, free_port):
    demo = FakeDemo()
    built_on_free_port = []
    monkeypatch.setattr(app, "build_demo", lambda: built_on_free_port.append(app.port_is_free("127.0.0.1", free_port))
                        or demo)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", free_port))
        busy.listen()
        chosen = app.choose_port("127.0.0.1", free_port)
        assert chosen != free_port and app.port_is_free("127.0.0.1", chosen)
        app.main(["--port", str(free_port)])
    out, err = capsys.readouterr()
    assert f"port {free_port} is busy; serving on" in err
    assert demo.launched["server_port"] != free_port and demo.launched["quiet"] is True
    assert f"GeoDistill Studio: http://127.0.0.1:{demo.launched['server_port']}/" in out
    assert "--share true" in out and "share=True" not in out


def test_no_free_port_fails_at_once_with_a_suggestion(capsys, monkeypatch):
    monkeypatch.setattr(app, "port_is_free", lambda host, port: False)
    monkeypatch.setattr(app, "build_demo", lambda: pytest.fail("the UI was built although no port is free"))
    with pytest.raises(SystemExit) as stop:
        app.main(["--port", "7860"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == ("error: cannot serve on 127.0.0.1: ports 7860-7879 are busy or cannot "
                                               "be bound; pick another with --port (or another address with --host)")


def test_port_taken_between_the_check_and_the_launch_is_a_one_line_error(capsys, monkeypatch):
    class TakenPort(FakeDemo):
        def launch(self, **kwargs):
            raise OSError("Cannot find empty port in range: 7860-7860. You can specify a different port")

    monkeypatch.setattr(app, "port_is_free", lambda host, port: True)
    monkeypatch.setattr(app, "build_demo", TakenPort)
    with pytest.raises(SystemExit) as stop:
        app.main(["--port", "7860"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: cannot serve on 127.0.0.1:7860 (Cannot find empty port in range: 7860-7860); "
        "pick another with --port or --host")


def test_allow_path_must_be_a_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "build_demo", lambda: pytest.fail("the UI was built despite a bad --allow-path"))
    with pytest.raises(SystemExit) as stop:
        app.main(["--allow-path", str(tmp_path / "nowhere")])
    assert stop.value.code == 2 and "--allow-path" in capsys.readouterr().err
    assert app.parse_args(["--allow-path", str(tmp_path), "--allow-path", "/x"]).allow_path == [str(tmp_path), "/x"]


def test_analytics_are_off():
    assert app.build_demo().analytics_enabled is False


def test_five_tabs_in_order():
    demo = app.build_demo()
    labels = [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)]
    assert labels == ["Explore", "Map", "Train", "Evaluate", "My area"]


def test_empty_checkpoints_fall_back_to_the_untrained_model():
    assert handlers.model_choices()[-1][1] == handlers.UNTRAINED
    assert all(not value.startswith("shipped:") for _, value in handlers.model_choices())
    assert f"No trained checkpoint in `{settings.checkpoints_dir()}`" in handlers.startup_message()
    assert "`checkpoints/`" not in handlers.startup_message()  # the root GEODISTILL_CHECKPOINTS points at
    teacher, student = studio.teacher_and_student(handlers.UNTRAINED, "45")
    assert teacher is student is studio.MODELS.get(None)  # built once, cached


def test_teacher_sees_everything_and_the_student_the_window(localized):
    sample, predictions = localized
    assert predictions["teacher"].fov_mask.all()
    assert predictions["student"].fov_mask.mean() == pytest.approx(0.5, abs=0.02)
    assert predictions["student"].error_m is not None


def test_render_and_map(localized):
    sample, predictions = localized
    pano, teacher, student, difference, bev, summary = handlers.render(sample, predictions, 0.6, True)
    for image in (teacher, student, difference, bev):
        assert image.ndim == 3 and image.shape[2] == 3
    assert pano.shape[1] == sample["pano"].shape[-1]
    assert "| | teacher | student |" in summary
    page = handlers.render_map(sample, predictions, False)
    assert page.startswith('<iframe class="geodistill-map"') and "teacher heatmap" in page
    assert "student heatmap" in page and "confidence" in page and "error" in page  # layers, marker popups
    assert "Localize a sample" in handlers.render_map(None, None, False)


def test_controls_moved_before_a_sample_do_nothing_and_localize_asks_for_one():
    assert handlers.localize(None, handlers.UNTRAINED, False, 180, 0) is None   # no error pops up
    assert handlers.render(None, None, 0.6, False) == (gr.skip(),) * 6
    with pytest.raises(gr.Error, match="Load a sample first"):
        handlers.require_sample(None)


def test_an_untrained_model_asked_for_a_heading_says_it_did_not_estimate_one(localized):
    sample, predictions = localized
    summary = handlers.render(sample, predictions, 0.6, True)[5]
    heading_row = next(line for line in summary.splitlines() if line.startswith("| heading"))
    assert "not estimated" in heading_row and "known" not in heading_row


def test_mistakes_become_gradio_errors(bad_image, sample_name, monkeypatch):
    with pytest.raises(gr.Error, match="no bundled sample named"):
        handlers.load_bundled("Nowhere/none")
    with pytest.raises(gr.Error, match="upload the panorama first"):
        handlers.load_sample("upload", "", "", "cross", "test", 0, None, None, "40.0, -74.0", 0.1, None, None)
    with pytest.raises(gr.Error, match="not_really.png"):
        handlers.load_sample("upload", "", "", "cross", "test", 0, bad_image, bad_image, "40.0, -74.0", 0.1, None,
                             None)
    monkeypatch.setattr(handlers, "MAX_UPLOAD_MB", 1e-6)
    with pytest.raises(gr.Error, match="the limit is"):
        handlers.load_sample("upload", "", "", "cross", "test", 0, bad_image, bad_image, "40.0, -74.0", 0.1, None,
                             None)
    with pytest.raises(gr.Error, match="dataset root not found"):
        handlers.load_sample("VIGOR root", "", "missing-root", "cross", "test", 0, None, None, None, None, None,
                             None)


def test_vigor_root_resolves_under_the_data_root_like_the_cli(monkeypatch):
    monkeypatch.setenv("GEODISTILL_DATA", str(handlers.settings.assets_dir()))  # so "samples" is assets/samples
    sample, info = handlers.load_sample("VIGOR root", "", "samples", "cross", "test", 0, None, None, None, None, None,
                                        None)
    assert sample["city"] in ("SanFrancisco", "Chicago") and info.startswith("samples cross/test #0")
    with pytest.raises(gr.Error, match="enter the folder of a VIGOR-layout dataset"):
        handlers.load_sample("VIGOR root", "", "  ", "cross", "test", 0, None, None, None, None, None, None)


def _form(**changes):
    form = dict(recipe="", task="weak", init_checkpoint="", dataset="synthetic", data_root="tiny-set", area="same",
                device="cpu", epochs=3, batch_size=2, lr=3e-4, max_steps=7, fov_min=90, fov_max=200, tau_teacher=0.1,
                tau_student=0.05, ema=0.95)
    form.update(changes)
    return list(form.values())


def test_train_form_builds_an_experiment_config(tiny_checkpoint):
    tiny_checkpoint(handlers.settings.runs_dir() / "weak" / "best")
    config = handlers.build_train_config(*_form(task="distill", init_checkpoint="weak"))
    assert isinstance(config, ExperimentConfig)
    assert (config.train.task, config.train.epochs, config.train.batch_size) == ("distill", 3, 2)
    assert (config.train.max_steps_per_epoch, config.optim.lr, config.data.root) == (7, 3e-4, "tiny-set")
    assert config.data.synthetic.generate and config.distill.init_checkpoint == "weak"
    assert (config.distill.fov.min_deg, config.distill.fov.max_deg, config.distill.ema_momentum) == (90, 200, 0.95)
    with pytest.raises(gr.Error, match="weak-baseline checkpoint"):
        handlers.build_train_config(*_form(task="distill"))
    with pytest.raises(gr.Error, match="smallest FoV"):
        handlers.build_train_config(*_form(fov_min=300))
    with pytest.raises(gr.Error, match="VIGOR root not found"):
        handlers.build_train_config(*_form(dataset="VIGOR root", data_root="nonexistent"))
    with pytest.raises(gr.Error, match="train.epochs: 0 is out of range"):
        handlers.build_train_config(*_form(epochs=0))
    with pytest.raises(gr.Error, match="optim.lr: -0.001 is out of range"):
        handlers.build_train_config(*_form(lr=-1e-3))


def test_train_form_round_trips_a_recipe():
    from geodistill.config import config_to_dict, load_config

    values = handlers.recipe_values("tiny.yaml")
    rebuilt = handlers.build_train_config("tiny.yaml", *values)
    assert config_to_dict(rebuilt) == config_to_dict(load_config(handlers.RECIPES_DIR / "tiny.yaml"))


def test_poll_reads_progress_and_redraws_curves_only_on_new_events(tmp_path):
    run = handlers.JOBS.root / "polled"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("name: polled\n")
    events = [{"event": "start", "step": 0, "epoch": 0, "task": "weak", "total_steps": 8},
              {"event": "step", "step": 4, "epoch": 0, "loss/total": 0.5, "eta_s": 3.0}]
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    status, progress, log, curves_key = shown = handlers.poll_run("polled")
    assert 'value="50.0"' in progress and "step 4/8" in progress and curves_key == ("polled", 2)
    assert isinstance(handlers.run_curves(curves_key), np.ndarray)
    # nothing changed: nothing is sent again (a status line redrawn every second flickers)
    assert handlers.poll_run("polled", *shown) == (gr.skip(),) * 4
    with (run / "events.jsonl").open("a") as log_file:
        log_file.write(json.dumps({"event": "step", "step": 6, "epoch": 0, "loss/total": 0.4}) + "\n")
    status, progress, _, curves_key = handlers.poll_run("polled", *shown)
    assert status == gr.skip() and "step 6/8" in progress and curves_key == ("polled", 3)
    with pytest.raises(gr.Error, match="no best/ checkpoint"):
        handlers.use_run_in_explore("polled")
    with pytest.raises(gr.Error, match="choose a run"):
        handlers.cancel_run(None)


@pytest.mark.slow
def test_evaluate_on_the_bundled_samples():
    table, cdf, gallery, setting, csv_path, cases = handlers.evaluate(
        handlers.UNTRAINED, str(handlers._samples_root()), "same", "all", 2, 180, True, progress=lambda *a, **k: None)
    assert table[0][:3] == ["student", "all", 2]
    assert cdf.ndim == 3 and len(gallery) == 2
    assert "FoV=180deg" in setting
    assert re.match(r"\d+\.\d m · ", gallery[0][1])  # the error first: a long name is cut, never the error
    header, *rows = Path(csv_path).read_text().splitlines()
    assert len(rows) == 2 and "u_pred_file_px" in header.split(",")
    sample, info, limited, fov, centre, model, heading, tabs = handlers.open_case(cases, gr.SelectData(
        None, {"index": 1, "value": None}))
    assert sample is cases[1]["sample"] and info.endswith(f"{gallery[1][1]}.") and tabs.selected == "explore"
    assert (limited, fov, model, heading) == (True, 180.0, handlers.UNTRAINED, "aligned")
    predictions = handlers.localize(sample, model, limited, fov, centre, heading)
    assert predictions["student"].error_m is not None


def test_a_finished_run_is_offered_and_opens_in_explore(monkeypatch, tmp_path, tiny_checkpoint):
    shipped = tmp_path / "checkpoints"
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(shipped))
    tiny_checkpoint(shipped / studio.DEFAULT_LOCALIZER)
    run = handlers.JOBS.root / "distilled"
    tiny_checkpoint(run / "best", task="distill")
    (run / "config.yaml").write_text("name: distilled\n")
    values = [value for _, value in handlers.model_choices()]
    assert values[0] == studio.shipped_choice(studio.DEFAULT_LOCALIZER)
    assert "runs/distilled" in values and values[-1] == handlers.UNTRAINED
    assert not [value for value in values if value.startswith("/")]  # runs by their relative name, no server path
    assert "shipped GeoDistill student" in handlers.startup_message()
    model_update, eval_update, tab = handlers.use_run_in_explore("distilled")
    assert model_update["value"] == "runs/distilled" and tab.selected == "explore"
    assert handlers._model("runs/distilled") == str(run)  # the relative name resolves under the runs root


def test_heading_choices_offer_the_full_circle_only_where_its_model_is_shipped(monkeypatch, tmp_path):
    shipped = tmp_path / "checkpoints"
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(shipped))
    assert [value for _, value in handlers.heading_choices()] == ["45", "aligned"]
    with pytest.raises(gr.Error, match="no full-circle orientation model"):
        handlers.localize({"pano": 0}, handlers.UNTRAINED, True, 180, 0, "full")
    (shipped / "orientation_full").mkdir(parents=True)
    (shipped / "orientation_full" / "config.json").write_text("{}")
    assert [value for _, value in handlers.heading_choices()] == ["45", "full", "aligned"]


def test_heading_choices_follow_the_selected_model(monkeypatch, tmp_path, tiny_checkpoint, sample_name):
    """A CCVPE model estimates its own heading: "unknown: full circle" appears for it and goes with another model."""
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(tmp_path / "checkpoints"))
    tiny_checkpoint(handlers.JOBS.root / "ccvpe" / "best", task="supervised")
    weak = handlers.JOBS.root / "weak"
    tiny_checkpoint(weak / "best")
    assert [value for _, value in handlers.heading_choices("runs/ccvpe")] == ["45", "full", "aligned"]
    assert [value for _, value in handlers.heading_choices("runs/weak")] == ["45", "aligned"]
    assert [value for _, value in handlers.orientation_choices("runs/ccvpe")] == ["aligned", "45", "unknown"]
    assert [value for _, value in handlers.orientation_choices(handlers.UNTRAINED)] == ["aligned", "45"]
    assert [value for _, value in handlers.heading_choices("/etc")] == ["45", "aligned"]  # outside: no error
    radio = handlers.heading_radio("runs/ccvpe", "45")
    assert radio["value"] == "45" and [value for _, value in radio["choices"]] == ["45", "full", "aligned"]
    radio = handlers.heading_radio("runs/weak", "full")  # the full circle goes: back to the default
    assert radio["value"] == "45" and [value for _, value in radio["choices"]] == ["45", "aligned"]
    assert handlers.orientation_radio("runs/weak", "unknown")["value"] == "aligned"
    assert handlers.orientation_radio("runs/ccvpe", "unknown")["value"] == "unknown"
    sample, _ = handlers.load_bundled(sample_name)[:2]
    full = handlers.localize(sample, "runs/ccvpe", True, 180, 0, "full")
    assert full["heading"] == "full" and full["student"].heading_deg is not None
    assert full["student"].orientation_field is not None
    aligned = handlers.localize(sample, "runs/ccvpe", True, 180, 0, "aligned")
    assert aligned["student"].heading_deg is None and aligned["teacher"].heading_deg is None
    within = handlers.localize(sample, "runs/ccvpe", False, 360, 0, "45")["teacher"].heading_deg
    assert min(within, 360 - within) <= 45 + 1e-6
    images = handlers.render(sample, full, 0.6, True, True)[:5]
    assert all(image is not None for image in images)


@pytest.mark.slow
@pytest.mark.skipif(not any((settings.REPO_ROOT / "checkpoints").glob("*/config.json")),
                    reason="no shipped checkpoints in this checkout")
def test_evaluate_tab_aligned_numbers_equal_the_cli(monkeypatch, tmp_path):
    """The tab says orientation=aligned: it must not run the heading estimator (which it once did, giving 7.34 m
    where the CLI gave 5.51 m), so its numbers are the CLI's on the same samples; both default to the same model
    (the CLI without --checkpoint, the tab's first shipped choice)."""
    from geodistill.cli import main

    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(settings.REPO_ROOT / "checkpoints"))
    root = str(handlers._samples_root())
    default_choice = handlers.model_choices()[0][1]
    assert default_choice == studio.shipped_choice(studio.DEFAULT_LOCALIZER)
    table, _, _, setting, _, _ = handlers.evaluate(default_choice, root, "same", "all", 0, 360, False,
                                                   progress=lambda *a, **k: None)
    assert "orientation=aligned" in setting
    summary_path = tmp_path / "cli.json"
    assert main(["evaluate", "--data", root, "--area", "same", "--split", "all", "--orientation", "aligned",
                 "--no-progress", "--json", str(summary_path)]) == 0
    cli = json.loads(summary_path.read_text())
    app_row = table[0]
    assert app_row[:3] == ["student", "all", cli["n"]]
    assert app_row[3:5] == [round(cli["mean_m"], 2), round(cli["median_m"], 2)]
    assert app_row[5] == round(100 * cli["recall_1m"], 1)


@pytest.fixture
def paths(monkeypatch, tmp_path):
    """A fresh path policy with one allowed folder."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setattr(handlers, "PATHS", handlers.PathPolicy([allowed]))
    return allowed


def test_upload_georeference_fields():
    none = handlers.upload_georeference("", "0.1", None)
    assert none.latlon is None and none.tile_meters_per_pixel() == 0.1  # no georeference, never Null Island
    assert handlers.upload_georeference("-33.86, 151.21", "0,5", "").latlon == (-33.86, 151.21)
    assert handlers.upload_georeference("0, 0", 0.2, None).latlon == (0.0, 0.0)  # a typed 0 is a coordinate
    for fields, message in [(("41.8", "0.1", ""), "Tile centre .lat, lon.: .41.8. is not two numbers"),
                            (("41.8, -87.6", "", ""), "Metres per pixel is empty"),
                            (("47,5766", "0.1", ""), "one number with a decimal comma, or two numbers"),
                            (("", "1e-9", ""), "outside the plausible range 0.01-20"),
                            (("", "1e9", ""), "outside the plausible range"),
                            (("", "nan", ""), "Metres per pixel: .nan. is not a finite number")]:
        with pytest.raises((gr.Error, DataError), match=message):
            handlers.upload_georeference(*fields)


def test_messages_are_escaped_once_and_name_no_server_path(paths):
    with pytest.raises(gr.Error) as caught:
        handlers.load_bundled("<City>/x")  # a nested handler: escaped once, not twice
    assert "&lt;City&gt;/x" in caught.value.message and "&amp;" not in caught.value.message
    upload = handlers.UPLOAD_DIR / "0123abcd" / "photo.png"
    assert handlers.shown(f"{upload}: not a readable image") == "photo.png: not a readable image"
    assert handlers.shown(f"{handlers.settings.runs_dir()}/exp1/train.log <b>") == "runs/exp1/train.log &lt;b&gt;"


def test_path_fields_stay_in_the_allowed_folders(paths, sample_name):
    for where in ("/etc", "../../..", str(handlers.settings.REPO_ROOT)):
        with pytest.raises(gr.Error, match="outside the folders this app may use.*--allow-path DIR"):
            handlers.load_sample("VIGOR root", "", where, "cross", "test", 0, None, None, None, None, None, None)
        with pytest.raises(gr.Error, match="outside the folders this app may use"):
            handlers.evaluate(handlers.UNTRAINED, where, "same", "all", 1, 360, False, progress=lambda *a, **k: None)
    with pytest.raises(gr.Error, match="data root ./etc. is outside"):
        handlers.build_train_config(*_form(dataset="VIGOR root", data_root="/etc"))
    with pytest.raises(gr.Error, match=r"data root .\.\./\.\./\.\./tmp/x. is outside"):
        handlers.build_train_config(*_form(data_root="../../../tmp/x"))  # a synthetic set would be written there
    with pytest.raises(gr.Error, match="checkpoint ./etc. is outside"):
        handlers.localize({"pano": 0}, "/etc", True, 180, 0, "aligned")
    with pytest.raises(gr.Error, match="checkpoint to start GeoDistill from ./. is outside"):
        handlers.build_train_config(*_form(task="distill", init_checkpoint="/"))
    with pytest.raises(gr.Error, match="no split folder.*splits holding &lt;City&gt;/"):  # allowed, so looked at
        handlers.load_sample("VIGOR root", "", str(paths), "cross", "test", 0, None, None, None, None, None, None)


def test_start_from_a_shipped_weak_baseline(monkeypatch, tmp_path, tiny_checkpoint):
    shipped = tmp_path / "checkpoints"
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(shipped))
    tiny_checkpoint(shipped / "weak_baseline")
    config = handlers.build_train_config(*_form(task="distill", init_checkpoint="shipped:weak_baseline"))
    assert config.distill.init_checkpoint == str(shipped / "weak_baseline")


def test_a_refused_start_changes_nothing(monkeypatch):
    monkeypatch.setattr(handlers.JOBS, "status", lambda name, events=None: type("S", (), {"active": True})())
    run = handlers.JOBS.root / "busy-run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("train: {epochs: 2}\n")
    with pytest.raises(gr.Error, match="already running"):
        handlers.start_training("busy-run", 1, *_form(epochs=50))
    assert (run / "config.yaml").read_text() == "train: {epochs: 2}\n"


@pytest.fixture(scope="module")
def uploaded_pair(tmp_path_factory, sample_name):
    """A bundled sample written out as the user's own files: a panorama and a 640-px tile with a world file."""

    from geodistill.viz.images import to_rgb_uint8

    sample = handlers.load_bundled(sample_name)[0]
    folder = tmp_path_factory.mktemp("upload")
    pano, tile = folder / "pano.jpg", folder / "tile.png"
    Image.fromarray(to_rgb_uint8(sample["pano"])).save(pano)
    Image.fromarray(to_rgb_uint8(sample["sat"])).resize((640, 640)).save(tile)
    world = folder / "tile.pgw"  # EPSG:3857, 0.2 m/px on the ground at the tile centre (47.3769, 8.5417)
    step = 0.2 / np.cos(np.radians(47.3769))
    x, y = np.radians(8.5417) * 6378137.0, np.log(np.tan(np.pi / 4 + np.radians(47.3769) / 2)) * 6378137.0
    world.write_text(f"{step}\n0\n0\n{-step}\n{x - 319.5 * step}\n{y + 319.5 * step}\n")
    return str(pano), str(tile), str(world)


def _upload(pair, tile_centre="47.3769, 8.5417", mpp="0,2", gt_latlon=None, gt_pixel=None):
    pano, tile, _ = pair
    return handlers.load_sample("upload", "", "", "cross", "test", 0, pano, tile, tile_centre, mpp, None, None,
                                gt_latlon, gt_pixel)


def test_an_upload_with_a_known_pixel_shows_its_error_in_metres_and_file_pixels(uploaded_pair):
    sample, info = _upload(uploaded_pair, gt_pixel="400, 200")
    assert sample["meters_per_pixel"] == pytest.approx(0.2 * 640 / sample["sat"].shape[-1])  # "0,2" is 0.2
    assert "Known camera position" in info
    predictions = handlers.localize(sample, handlers.UNTRAINED, False, 360, 0, "aligned")
    student = predictions["student"]
    to_file = 640 / sample["sat"].shape[-1]
    truth_m = np.hypot(*((student.uv - np.array([400, 200]) / to_file) * student.meters_per_pixel))
    assert student.error_m == pytest.approx(truth_m, rel=1e-3)
    summary = handlers.render(sample, predictions, 0.6, False)[5]
    assert f"**{student.error_m:.2f} m**" in summary and "file pixel 400.0, 200.0" in summary
    assert f"| pixel (u, v) in the 640×640 tile file | {student.uv[0] * to_file:.1f}, " in summary
    # the same truth as lat/lon gives the same error
    latlon = f"{student.latlon[0]:.8f}, {student.latlon[1]:.8f}"
    by_latlon = handlers.localize(_upload(uploaded_pair, gt_latlon=latlon)[0], handlers.UNTRAINED, False, 360, 0,
                                  "aligned")["student"]
    assert by_latlon.error_m == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize("centre, message", [("47,3769", "one number with a decimal comma, or two numbers"),
                                             ("47.3769", "not two numbers"), ("91, 8", "latitude 91")])
def test_a_typed_tile_centre_is_never_misread(uploaded_pair, centre, message):
    with pytest.raises(gr.Error, match=message):
        _upload(uploaded_pair, tile_centre=centre)


def test_a_world_file_fills_the_georeference(uploaded_pair):
    _, tile, world = uploaded_pair
    centre, mpp, note = handlers.read_upload_georeference(tile, world)
    assert centre == "47.3769000, 8.5417000" and float(mpp) == pytest.approx(0.2, rel=1e-3)
    assert "tile.pgw" in note
    assert handlers.read_upload_georeference(tile, None)[:2] == (gr.skip(), gr.skip())  # a PNG has none


def test_export_writes_json_and_geojson(uploaded_pair):
    sample = _upload(uploaded_pair, gt_pixel="320, 320")[0]
    predictions = handlers.localize(sample, handlers.UNTRAINED, True, 180, 0, "aligned")
    json_path, geojson_path = handlers.export_result(sample, predictions, handlers.UNTRAINED)
    document = json.loads(Path(json_path).read_text())
    to_file = 640 / sample["sat"].shape[-1]
    assert document["student"]["uv_file"] == pytest.approx(list(predictions["student"].uv * to_file))
    assert document["student"]["uv_gt_file"] == pytest.approx([320, 320]) and document["tile_file_px"] == 640
    collection = json.loads(Path(geojson_path).read_text())
    kinds = [feature["properties"]["kind"] for feature in collection["features"]]
    assert kinds == ["tile", "prediction", "prediction", "ground truth"]
    lon, lat = collection["features"][2]["geometry"]["coordinates"]
    assert (lat, lon) == pytest.approx(tuple(predictions["student"].latlon))
    unreferenced = _upload(uploaded_pair, tile_centre="")[0]
    files = handlers.export_result(unreferenced, handlers.localize(unreferenced, handlers.UNTRAINED, True, 180, 0),
                                   handlers.UNTRAINED)
    assert [Path(f).suffix for f in files] == [".json"]  # no place on the earth: no GeoJSON
    with pytest.raises(gr.Error, match="localize a sample first"):
        handlers.export_result(None, None, handlers.UNTRAINED)


def test_loading_an_upload_says_what_it_reads(uploaded_pair):
    pano, tile, _ = uploaded_pair
    steps = []
    handlers.load_sample("upload", "", "", "cross", "test", 0, pano, tile, "", "0.2", None, None,
                         progress=lambda fraction, desc=None: steps.append(desc))
    width, height = Image.open(pano).size
    assert steps[0] == f"reading the panorama ({width}×{height} px)" and len(steps) >= 3

"""The My area tab's handlers, called directly (no server): safe uploads, confined paths, a refine run with its map,
downloads, Cancel and resume, "open in Explore", the adaptation launch; the fallback (untrained) model."""

from __future__ import annotations

import functools
import json
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import app_handlers as handlers
import studio_ui.my_area_handlers as area
from geodistill import keys, settings
from geodistill.area import refine
from geodistill.area.bench import write_bench_area
from geodistill.area.exif import save_jpeg_with_gps
from geodistill.area.orthophoto import open_orthophoto
from geodistill.area.results import read_results
from geodistill.data.pairs import GeoReference, load_panorama, make_sample
from geodistill.geometry.panorama import roll_panorama
from geodistill.viz.area_map import confidence_colour

SERVER = area.SOURCES[0]


def _request(name: str):
    return SimpleNamespace(session_hash=f"test-{name}")


@pytest.fixture
def server_area(request):
    """(orthophoto, panorama folder) of a generated area under the data root: 3 geotagged panoramas in UTM plus one
    outside the orthophoto and one without GPS."""
    folder = settings.data_dir() / "my_area_tests" / request.node.name
    ortho, panos = write_bench_area(folder, 3, seed=5, ortho_px=900, pano_size=(256, 128), spread_m=20.0)
    lat, lon = open_orthophoto(ortho).bounds_latlon()[2:]
    save_jpeg_with_gps(Image.new("RGB", (256, 128)), panos / "x_outside.jpg", lat + 0.01, lon)
    Image.new("RGB", (256, 128)).save(panos / "y_nogps.jpg")
    return ortho, panos


def _run(ortho, panos, session: str, gps: str = "", sigma: float = 10.0) -> list:
    return list(area.run_refine(SERVER, str(ortho), str(panos), gps, None, None, handlers.UNTRAINED, sigma,
                                _request(session)))


def test_a_run_maps_every_position_and_offers_both_downloads(server_area):
    ortho, panos = server_area
    outputs = _run(ortho, panos, "map")
    progress, drawn, downloads, entries, context = outputs[-1]
    assert 'data-state="done"' in progress and "3 refined" in progress and "1 outside" in progress
    assert "y_nogps.jpg" in progress and "no GPS" in progress                  # each problem named
    assert str(settings.data_dir()) not in progress                             # no server path on the page
    geojson, csv = downloads
    assert geojson.endswith(".geojson") and csv.endswith(".csv")
    by_name = {r["name"]: r for r in read_results(geojson)}
    assert {r["name"]: r["status"] for r in read_results(csv)} == {n: r["status"] for n, r in by_name.items()}
    refined = [n for n, r in by_name.items() if r["status"] == "refined"]
    assert len(refined) == 3 and by_name["x_outside.jpg"]["status"] == "outside"
    assert entries["choices"] == sorted([*refined, "x_outside.jpg"])
    assert drawn.startswith('<iframe class="geodistill-map"') and drawn.count("area-line") == 3
    for name in refined:                                                        # each line in its confidence colour
        assert confidence_colour(by_name[name]["confidence"]) in drawn
        assert f"moved {by_name[name]['shift_m']:.1f} m" in drawn
    assert context["tile_px"] > 0 and set(context["records"]) == set(by_name)


def test_bad_inputs_are_messages_naming_the_file(server_area, tmp_path):
    ortho, panos = server_area
    no_crs = ortho.with_name("<no crs>.tif")
    Image.new("RGB", (64, 64)).save(no_crs)
    with pytest.raises(handlers.ShownError) as error:
        _run(no_crs, panos, "bad")
    assert "&lt;no crs&gt;.tif" in error.value.message and "Traceback" not in error.value.message
    with pytest.raises(handlers.ShownError, match="outside the folders this app may use"):
        _run(tmp_path / "elsewhere.tif", panos, "bad")
    with pytest.raises(handlers.ShownError, match="not found"):
        _run(ortho, panos.parent / "missing", "bad")


def test_cancel_stops_between_batches_and_the_same_run_resumes(server_area, monkeypatch):
    ortho, panos = server_area
    monkeypatch.setattr(area, "refine_area", functools.partial(refine.refine_area, batch_size=1))
    assert "Nothing is running" in area.cancel_refine(_request("cancel"))
    steps = area.run_refine(SERVER, str(ortho), str(panos), "", None, None, handlers.UNTRAINED, 10.0,
                            _request("cancel"))
    next(steps)                                             # inputs checked, loading the model
    next(steps)                                             # the thread runs
    assert 'data-state="stopping"' in area.cancel_refine(_request("cancel"))
    progress, _, downloads, _, _ = list(steps)[-1]
    assert 'data-state="stopped"' in progress and "Run it again" in progress
    done = len([r for r in read_results(downloads[0]) if r["status"] != "skipped"])
    assert done < 4
    progress = _run(ortho, panos, "cancel")[-1][0]
    assert 'data-state="done"' in progress and f"{done} from an earlier run" in progress


def _zip(path, entries: dict) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return str(path)


def test_an_upload_is_extracted_safely_into_the_session_folder(server_area, tmp_path):
    ortho, panos = server_area
    images = {f"area/{p.name}": p.read_bytes() for p in sorted(panos.iterdir())}
    upload = _zip(tmp_path / "panos.zip", {**images, "area/gps.csv": "name,lat,lon\n", "__MACOSX/._a.jpg": b"x",
                                           "notes.txt": "ignored"})
    inputs = area.area_inputs(area.SOURCES[1], "", "", "", upload, str(ortho), area.session_folder(_request("up")))
    assert inputs.panos.is_relative_to(settings.data_dir() / area.AREA_FOLDER / "test-up")
    assert sorted(p.name for p in inputs.panos.iterdir()) == sorted(p.name for p in panos.iterdir())
    assert inputs.gps_csv.name == "gps.csv" and inputs.ortho.read_bytes() == ortho.read_bytes()
    for entries, message in [({"../evil.jpg": b"x"}, "points outside the folder"),
                             ({"/etc/evil.jpg": b"x"}, "points outside the folder"),
                             ({"a/p.jpg": b"x", "b/p.jpg": b"y"}, "two files named p.jpg"),
                             ({"a.csv": "", "b.csv": ""}, "two CSV files"),
                             ({"notes.txt": "x"}, "no panorama")]:
        bad = _zip(tmp_path / "bad.zip", entries)
        with pytest.raises(handlers.ShownError, match=message) as error:
            area.area_inputs(area.SOURCES[1], "", "", "", bad, str(ortho), tmp_path / "session")
        assert "bad.zip" in error.value.message
    assert not (tmp_path / "evil.jpg").exists() and not (tmp_path / "session" / "evil.jpg").exists()
    link = zipfile.ZipInfo("link.jpg")
    link.external_attr = 0o120777 << 16
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as archive:
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(handlers.ShownError, match="symbolic link"):
        area.area_inputs(area.SOURCES[1], "", "", "", str(tmp_path / "link.zip"), str(ortho), tmp_path / "s")
    (tmp_path / "text.zip").write_text("not a zip")
    with pytest.raises(handlers.ShownError, match="not a readable zip"):
        area.area_inputs(area.SOURCES[1], "", "", "", str(tmp_path / "text.zip"), str(ortho), tmp_path / "s")


def test_an_upload_bigger_than_the_limit_uncompressed_is_refused(tmp_path, monkeypatch, server_area):
    ortho, _ = server_area
    monkeypatch.setattr(area, "MAX_EXTRACTED_MB", 1)
    bomb = _zip(tmp_path / "bomb.zip", {"big.jpg": bytes(2 * 2**20)})     # 2 MB of zeros: a few KB zipped
    with pytest.raises(handlers.ShownError, match="more than 1 MB uncompressed"):
        area.area_inputs(area.SOURCES[1], "", "", "", bomb, str(ortho), tmp_path / "session")


def test_a_panorama_opens_in_explore_with_its_tile(server_area):
    ortho, panos = server_area
    context = _run(ortho, panos, "explore")[-1][-1]
    name = "pano_0001.jpg"
    sample, info, limited, model, tabs = area.open_in_explore(name, context)
    record = context["records"][name]
    assert name in info and "turned north" in info and limited is False and model == handlers.UNTRAINED
    assert np.asarray(sample[keys.LATLON_SAT]) == pytest.approx([record["prior_lat"], record["prior_lon"]])
    with open_orthophoto(ortho) as orthophoto:
        tile = orthophoto.cut_tile(record["prior_lat"], record["prior_lon"], context["tile_px"], context["tile_mpp"])
    side = sample[keys.SAT].shape[-1]
    expected = np.asarray(Image.fromarray(tile).resize((side, side), Image.Resampling.BILINEAR), np.float32) / 255
    assert np.abs(sample[keys.SAT].permute(1, 2, 0).numpy() - expected).mean() < 0.05
    assert tabs.selected == "explore"
    pano = load_panorama(panos / name)                                      # turned north by its refined heading
    turned = make_sample(roll_panorama(pano.image, -record["heading_deg"]), tile, GeoReference(
        lat=record["prior_lat"], lon=record["prior_lon"], meters_per_pixel=context["tile_mpp"]),
        pano_height=handlers.PANO_HEIGHT)
    assert record["heading_source"] != "assumed north"
    assert (sample[keys.PANO] - turned[keys.PANO]).abs().mean() < 0.02
    assert (sample[keys.PANO] - turned[keys.PANO].roll(40, dims=-1)).abs().mean() > 0.05
    with pytest.raises(handlers.ShownError, match="choose a panorama of the run"):
        area.open_in_explore("y_nogps.jpg", context)
    with pytest.raises(handlers.ShownError, match="run the localization first"):
        area.open_in_explore(name, None)


def test_adapt_writes_the_area_dataset_and_starts_a_distillation_job(tmp_path, monkeypatch, tiny_checkpoint):
    folder = settings.data_dir() / "my_area_tests" / "adapt"
    ortho, panos = write_bench_area(folder, 3, seed=6, ortho_px=1400, pano_size=(256, 128), spread_m=10.0)
    checkpoint = tiny_checkpoint(settings.runs_dir() / "my-area-model" / "best")
    started = []
    monkeypatch.setattr(area.JOBS, "start", lambda config, name: started.append((config, name)) or
                        SimpleNamespace(summary=lambda: f"{name}: running"))
    context = {"ortho": str(ortho), "panos": str(panos), "gps_csv": None, "choice": handlers.UNTRAINED}
    with pytest.raises(handlers.ShownError, match="starts from a trained model"):
        area.start_adapt(context, 2, _request("adapt"))
    context["choice"] = handlers.PATHS.display(checkpoint.parent)
    status, runs = area.start_adapt(context, 2, _request("adapt"))
    (config, name), = started
    assert name.startswith("adapt-") and name in status and runs["value"] == name
    assert config.train.task == "distill" and config.train.epochs == 2
    assert config.distill.init_checkpoint == str(checkpoint)
    dataset = json.loads((settings.resolve_path(config.data.root, settings.data_dir()) / "area_dataset.json")
                         .read_text())
    assert dataset["panoramas"] == 3 and dataset["labels"] == "gps_priors"

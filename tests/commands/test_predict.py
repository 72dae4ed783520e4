"""``python -m geodistill predict``: clear errors (exit 2) on bad input, JSON on a good pair and on a pairs CSV."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from geodistill.checkpoint import save_checkpoint
from geodistill.cli import main
from geodistill.config import config_from_dict
from geodistill.shipped import DEFAULT_LOCALIZER
from geodistill.geometry.frames import meters_per_pixel_at, xy_to_latlon

TINY = {
    "model": {"backbone": "tiny_cnn", "pretrained": False, "allow_random_init": True, "decoder_width": 16,
              "level_channels": [16, 8, 4]},
    "data": {"pano_height": 32, "sat_size": 64},
}


@pytest.fixture(autouse=True)
def _no_shipped_models(monkeypatch, tmp_path):
    """Defaults (checkpoints/<DEFAULT_LOCALIZER>, checkpoints/orientation) come from an empty folder."""
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(tmp_path / "shipped"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from geodistill.models.localizer import LocalizerNet

    folder = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 80, 3), dtype=np.uint8)).save(folder / "pano.png")
    Image.fromarray(rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(folder / "sat.png")
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(folder / "wide.png")
    config = config_from_dict(TINY)
    torch.manual_seed(0)
    save_checkpoint(folder / "run" / "best", config, {"model": LocalizerNet(config.model).state_dict()},
                    {"task": "weak", "role": "weak"})
    return folder


def run_cli(capsys, *argv):
    code = main(["predict", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_good_pair_prints_json(files, capsys):
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pano", files / "pano.png", "--sat",
                             files / "sat.png", "--mpp", "0.5", "--sat-latlon", "41.8779,-87.6894", "--json",
                             "--device", "cpu")
    assert code == 0, err
    document = json.loads(out)
    prediction = document["prediction"]
    assert document["role"] == "weak" and document["checkpoint"].endswith("best")
    u, v, east, north = prediction["u"], prediction["v"], prediction["east_m"], prediction["north_m"]
    assert 0 <= u <= 80 and 0 <= v <= 80  # pixel on the 80-px tile as given
    assert u == pytest.approx(40 + east / 0.5, abs=1e-3) and v == pytest.approx(40 - north / 0.5, abs=1e-3)
    lat, lon = xy_to_latlon(np.array([east, north]), np.array([41.8779, -87.6894]))
    assert (prediction["lat"], prediction["lon"]) == pytest.approx((lat, lon), abs=1e-9)
    assert prediction["heading_deg"] is None and prediction["meters_per_pixel"] == pytest.approx(0.5)


def test_zoom_and_fov(files, capsys):
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pano", files / "pano.png", "--sat",
                             files / "sat.png", "--zoom", "20", "--sat-latlon", "41.8779,-87.6894", "--fov", "90",
                             "--fov-center", "45", "--json")
    assert code == 0, err
    prediction = json.loads(out)["prediction"]
    assert prediction["meters_per_pixel"] == pytest.approx(float(meters_per_pixel_at(41.8779, 20)))
    assert prediction["visible_fraction"] == pytest.approx(0.25)


def test_pairs_csv(files, capsys):
    (files / "pairs.csv").write_text("pano,sat,mpp,zoom,lat,lon\npano.png,sat.png,0.5,,,\n"
                                     "pano.png,sat.png,,20,41.8779,-87.6894\n")
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pairs", files / "pairs.csv", "--json")
    assert code == 0, err
    predictions = json.loads(out)["predictions"]
    assert len(predictions) == 2 and predictions[0]["lat"] is None and predictions[1]["lat"] is not None
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pairs", files / "pairs.csv")
    assert code == 0 and out.count("pano.png in sat.png") == 2


@pytest.mark.parametrize("argv, message", [
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png"], "--mpp"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--zoom", "20"], "--sat-latlon"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--mpp", "0.5", "--sat-latlon", "north"], "LAT,LON"),
    (["--pano", "{d}/missing.png", "--sat", "{d}/sat.png", "--mpp", "0.5"], "missing.png"),
    (["--pano", "{d}/wide.png", "--sat", "{d}/sat.png", "--mpp", "0.5"], "twice as wide"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/wide.png", "--mpp", "0.5"], "square"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--mpp", "-1"], "plausible range 0.01-20 m/px"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--mpp", "1e9"], "--mpp: 1e+09 m/px is outside the plausible"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--mpp", "1e-9"], "--mpp: 1e-09 m/px is outside"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--mpp", "0.5", "--fov", "400"], "--fov"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--mpp", "0.5", "--fov-center", "30"], "--fov-center"),
    (["--pairs", "{d}/nope.csv"], "nope.csv"),
    (["--pairs", "{d}/bad.csv"], "mpp or zoom"),
    (["--pairs", "{d}/badrow.csv"], "line 2"),
    (["--pairs", "{d}/binary.csv"], "not a UTF-8 text CSV"),
    (["--pairs", "{d}/infinite.csv"], "line 2: column 'gt_lat' must be a finite number, got 'inf'"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--mpp", "0.5", "--fov", "90", "--fov-center", "nan"],
     "--fov-center must be a finite"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--mpp", "0.5", "--heading-range", "10"],
     "--heading-range needs --heading-prior"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--mpp", "0.5", "--heading-prior", "10",
      "--heading-range", "200"], "between 0 and 180"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--mpp", "0.5", "--heading-prior", "10", "--no-orientation"],
     "contradict"),
])
def test_bad_inputs_exit_2_with_a_clear_message(files, capsys, argv, message):
    (files / "bad.csv").write_text("pano,sat\npano.png,sat.png\n")
    (files / "badrow.csv").write_text("pano,sat,mpp\npano.png,sat.png,abc\n")
    (files / "binary.csv").write_bytes(b"\xff\xfe\x00pano,sat,mpp\n")
    (files / "infinite.csv").write_text("pano,sat,mpp,lat,lon,gt_lat,gt_lon\npano.png,sat.png,0.5,40,-73,inf,5\n")
    argv = [a.format(d=files) for a in argv]
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", *argv)
    assert code == 2
    assert message in err


def test_missing_default_checkpoint_is_explained(files, capsys):
    code, out, err = run_cli(capsys, "--pano", files / "pano.png", "--sat", files / "sat.png", "--mpp", "0.5")
    assert code == 2 and DEFAULT_LOCALIZER in err and "--checkpoint" in err


def test_default_checkpoint_is_used(files, capsys, monkeypatch, tmp_path):
    import shutil

    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(tmp_path))
    shutil.copytree(files / "run" / "best", tmp_path / DEFAULT_LOCALIZER)
    code, out, err = run_cli(capsys, "--pano", files / "pano.png", "--sat", files / "sat.png", "--mpp", "0.5",
                             "--json")
    assert code == 0, err
    assert json.loads(out)["checkpoint"].endswith(DEFAULT_LOCALIZER)


def test_unknown_device_is_a_clear_error(files, capsys):
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pano", files / "pano.png", "--sat",
                             files / "sat.png", "--mpp", "0.5", "--device", "gpu")
    assert code == 2 and "'gpu' is not a device" in err


def test_southern_and_western_coordinates_parse_after_a_space(files, capsys):
    """``--sat-latlon -33.86,151.21`` (a leading minus) is a value, not an unknown option."""
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pano", files / "pano.png", "--sat",
                             files / "sat.png", "--mpp", "0.5", "--sat-latlon", "-33.86,151.21", "--gt-latlon",
                             "-33.8601,151.2101", "--json")
    assert code == 0, err
    prediction = json.loads(out)["prediction"]
    assert prediction["lat"] == pytest.approx(-33.86, abs=1e-3) and prediction["lon"] == pytest.approx(151.21, abs=1e-3)
    truth = np.array(prediction["uv_gt_file"])
    east, north = (truth - 40.0) * np.array([0.5, -0.5])  # the known position, in metres from the tile centre
    assert north == pytest.approx(-11.1, abs=0.2) and east == pytest.approx(9.3, abs=0.2)


def test_known_pixel_reports_the_error_in_file_pixels_and_metres(files, capsys):
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pano", files / "pano.png", "--sat",
                             files / "sat.png", "--mpp", "0.5", "--gt-px", "10,70", "--json")
    assert code == 0, err
    prediction = json.loads(out)["prediction"]
    assert prediction["uv_file"] == [prediction["u"], prediction["v"]]
    assert prediction["uv_gt_file"] == pytest.approx([10.0, 70.0])
    east_gt, north_gt = (10.0 - 40.0) * 0.5, -(70.0 - 40.0) * 0.5
    expected = math.hypot(prediction["east_m"] - east_gt, prediction["north_m"] - north_gt)
    assert prediction["error_m"] == pytest.approx(expected, abs=1e-3)
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pano", files / "pano.png", "--sat",
                             files / "sat.png", "--mpp", "0.5", "--gt-px", "10,70")
    assert code == 0 and f"error {expected:.2f} m" in out and "of the 80x80 tile" in out


def test_pairs_with_known_positions_print_a_summary(files, capsys):
    (files / "known.csv").write_text("pano,sat,mpp,lat,lon,gt_lat,gt_lon,gt_u,gt_v\n"
                                     "pano.png,sat.png,0.5,,,,,10,70\n"
                                     "pano.png,sat.png,0.5,-33.86,151.21,-33.8601,151.2101,,\n"
                                     "pano.png,sat.png,0.5,,,,,,\n")
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pairs", files / "known.csv", "--json")
    assert code == 0, err
    document = json.loads(out)
    errors = [p["error_m"] for p in document["predictions"]]
    assert errors[2] is None and None not in errors[:2]
    summary = document["summary"]
    assert summary["n"] == 2 and summary["mean_m"] == pytest.approx(np.mean(errors[:2]))
    assert summary["median_m"] == pytest.approx(np.median(errors[:2]))
    assert summary["recall_5m"] == pytest.approx(np.mean([e <= 5.0 for e in errors[:2]]))
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pairs", files / "known.csv")
    assert code == 0, err
    assert f"summary over 2 of 3 pairs with a known position: mean {summary['mean_m']:.2f} m" in out
    assert "R@1m" in out and "R@3m" in out and "R@5m" in out


def test_pairs_without_known_positions_print_no_summary(files, capsys):
    (files / "unknown.csv").write_text("pano,sat,mpp\npano.png,sat.png,0.5\n")
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pairs", files / "unknown.csv")
    assert code == 0 and "summary" not in out
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pairs", files / "unknown.csv", "--json")
    assert json.loads(out)["summary"] is None


@pytest.mark.parametrize("argv, message", [
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--mpp", "0.5", "--gt-latlon", "-33.86,151.21"],
     "--gt-latlon needs --sat-latlon"),
    (["--pano", "{d}/pano.png", "--sat", "{d}/sat.png", "--mpp", "0.5", "--gt-px", "ten,70"], "U,V"),
    (["--pairs", "{d}/both.csv"], "line 2: give the known position as gt_lat,gt_lon or as gt_u,gt_v"),
    (["--pairs", "{d}/half.csv"], "both gt_u and gt_v"),
    (["--pairs", "{d}/half.csv", "--gt-px", "1,2"], "do not combine it with"),
])
def test_bad_known_positions_exit_2(files, capsys, argv, message):
    (files / "both.csv").write_text("pano,sat,mpp,lat,lon,gt_lat,gt_lon,gt_u,gt_v\npano.png,sat.png,0.5,1,2,1,2,3,4\n")
    (files / "half.csv").write_text("pano,sat,mpp,gt_u,gt_v\npano.png,sat.png,0.5,3,\n")
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", *[a.format(d=files) for a in argv])
    assert code == 2 and message in err


def test_known_position_is_given_once(files, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--pano", "p.png", "--sat", "s.png", "--mpp", "0.5", "--gt-px", "1,2", "--gt-latlon", "1,2"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_pinhole_photo_with_hfov(files, capsys):
    """The README's photo example: a 3:2 photo is not a panorama, but with --hfov it is localized on its columns."""
    code, out, err = run_cli(capsys, "--checkpoint", files / "run", "--pano", files / "wide.png", "--hfov", "60",
                             "--sat", files / "sat.png", "--mpp", "0.5", "--sat-latlon", "-33.8568,151.2153", "--json")
    assert code == 0, err
    prediction = json.loads(out)["prediction"]
    assert prediction["visible_fraction"] == pytest.approx(60 / 360, abs=0.02)
    assert prediction["lat"] == pytest.approx(-33.8568, abs=1e-3)


def test_a_ccvpe_checkpoint_reports_its_heading_with_a_confidence_and_honours_a_prior(files, capsys, tmp_path):
    from geodistill.models.ccvpe import CcvpeNet

    config = config_from_dict({**TINY, "model": {**TINY["model"], "architecture": "ccvpe",
                                                 "ccvpe": {"azimuth_bins": 4, "match_strides": [16, 8],
                                                           "descriptor_channels": [8, 8], "output_stride": 4}}})
    torch.manual_seed(0)
    save_checkpoint(files / "ccvpe" / "best", config, {"model": CcvpeNet(config.model).state_dict()},
                    {"task": "supervised", "role": "supervised"})
    # the shipped orientation model is not loaded for a model that estimates its own heading (this one would fail)
    (tmp_path / "shipped" / "orientation").mkdir(parents=True)
    (tmp_path / "shipped" / "orientation" / "config.json").write_text("{}")
    common = ["--checkpoint", files / "ccvpe", "--pano", files / "pano.png", "--sat", files / "sat.png", "--mpp",
              "0.5", "--device", "cpu"]
    code, out, err = run_cli(capsys, *common, "--json", "--heading-prior", "123.5")
    assert code == 0, err
    document = json.loads(out)
    assert document["role"] == "supervised" and document["orientation_checkpoint"].startswith("the CCVPE model")
    assert document["prediction"]["heading_deg"] == pytest.approx(123.5, abs=1e-3)
    assert 0.0 <= document["prediction"]["heading_confidence"] <= 1.0 + 1e-6
    assert (document["heading_prior_deg"], document["heading_range_deg"]) == (123.5, None)
    code, out, err = run_cli(capsys, *common, "--heading-prior", "10", "--heading-range", "30")
    assert code == 0, err
    heading = float(out.split("heading ")[1].split(" deg")[0])
    assert min(abs(heading - 10.0), 360.0 - abs(heading - 10.0)) <= 30.05 and "heading confidence" in out
    code, out, err = run_cli(capsys, *common, "--json", "--no-orientation")
    assert code == 0, err
    assert json.loads(out)["prediction"]["heading_deg"] is None  # taken as north-aligned, not estimated

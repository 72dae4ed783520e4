"""The evaluation protocol: hand-computed metrics, seeded FoV windows and test yaws, orientation checks."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from geodistill import keys
from geodistill.data.collate import assemble_sample
from geodistill.errors import CheckpointError, DataError
from geodistill.evaluation import (
    EvalResult,
    check_orientation_support,
    evaluate_localizer,
    fov_center_for_query,
    perturb_heading,
    summarize_errors,
    yaw_for_query,
)
from geodistill.inference import Prediction

# errors by query index and cities: mean 4.125, median 3, R@1 1/4, R@3 2/4, R@5 3/4
ERRORS_M = [0.5, 2.0, 4.0, 10.0]
CITIES = ["Alpha", "Alpha", "Beta", "Beta"]


def make_dataset(count: int = 4, width: int = 16) -> list[dict]:
    samples = []
    for index in range(count):
        xy_gt = (float(index), -float(index))
        samples.append(assemble_sample(
            torch.rand(3, width // 2, width), torch.rand(3, 8, 8), 0.5, (4.0 + 2 * index, 4.0 + 2 * index), xy_gt,
            None, None, city=CITIES[index % len(CITIES)], pano_name=f"pano{index}.jpg", index=index))
    return samples


class FakeLocalizer:
    """Predicts the true position plus a known eastward error per query; records the FoV arguments it got."""

    role = "student"

    def __init__(self, orientation_range_deg: float | None = None):
        self.orientation = object() if orientation_range_deg is not None else None
        self.orientation_range_deg = orientation_range_deg
        self.orientation_source = "fake-orientation"
        self.calls: list[tuple[int, float | None, float, float]] = []
        self.estimate_heading_args: list[bool | None] = []
        self.prior_args: list[tuple] = []

    def predict_batch(self, samples, fov_deg=None, fov_center_deg=0.0, with_heatmap=True, estimate_heading=None,
                      heading_prior_deg=None, heading_range_deg=None, location_prior=None):
        self.estimate_heading_args.append(estimate_heading)
        self.prior_args.append((heading_prior_deg, heading_range_deg))
        predictions = []
        for sample, centre in zip(samples, fov_center_deg):
            index = sample[keys.INDEX]
            heading = float(sample[keys.HEADING_GT])
            self.calls.append((index, fov_deg, centre, heading))
            xy_gt = sample[keys.XY_GT].double().numpy()
            xy = xy_gt + np.array([ERRORS_M[index % len(ERRORS_M)], 0.0])
            predictions.append(Prediction(
                uv=np.zeros(2), xy_m=xy, latlon=None,
                heading_deg=(heading + 2.0) % 360.0 if estimate_heading else None,
                confidence=0.25, prob_on_tile=None, scores=np.zeros((1, 1)), meters_per_pixel=0.5,
                fov_mask=np.ones(16, bool), uv_gt=sample[keys.UV_GT].double().numpy(), xy_gt_m=xy_gt,
                error_m=float(np.hypot(*(xy - xy_gt))), heading_gt_deg=heading))
        return predictions


def test_metrics_on_a_hand_made_case():
    result = evaluate_localizer(FakeLocalizer(), make_dataset(), batch_size=3, setting={"area": "cross"})
    summary = result.to_dict()
    assert summary["n"] == 4
    assert summary["mean_m"] == pytest.approx(4.125)
    assert summary["median_m"] == pytest.approx(3.0)
    assert (summary["recall_1m"], summary["recall_3m"], summary["recall_5m"]) == (0.25, 0.5, 0.75)
    alpha, beta = summary["per_city"]["Alpha"], summary["per_city"]["Beta"]
    assert (alpha["n"], alpha["mean_m"], alpha["median_m"], alpha["recall_1m"], alpha["recall_3m"]) == (
        2, 1.25, 1.25, 0.5, 1.0)
    assert (beta["mean_m"], beta["recall_3m"], beta["recall_5m"]) == (7.0, 0.0, 0.5)
    assert "ori_mean_deg" not in summary
    assert summary["setting"]["area"] == "cross" and summary["setting"]["orientation"] == "aligned"
    table = result.format_table()
    assert "area=cross" in table and "FoV=360deg" in table and "orientation=aligned" in table and "role=student" in table
    assert "Alpha" in table and "4.12" in table


def test_summarize_errors_empty_and_limit():
    assert summarize_errors([])["mean_m"] is None
    result = evaluate_localizer(FakeLocalizer(), make_dataset(), limit=2)
    assert result.to_dict()["n"] == 2 and result.to_dict()["mean_m"] == pytest.approx(1.25)


def test_every_kth_query_keeps_the_full_runs_windows():
    full, subset = FakeLocalizer(), FakeLocalizer()
    evaluate_localizer(full, make_dataset(), fov_deg=90.0, seed=7, batch_size=1)
    result = evaluate_localizer(subset, make_dataset(), fov_deg=90.0, seed=7, every=2, batch_size=4)
    assert [row["index"] for row in result.rows] == [0, 2]
    assert subset.calls == [full.calls[0], full.calls[2]]
    assert result.to_dict()["setting"]["every"] == 2
    with pytest.raises(ValueError, match="every"):
        evaluate_localizer(FakeLocalizer(), make_dataset(), every=0)


def test_fov_windows_are_seeded_per_query_and_independent_of_batching():
    first, second, other_seed = FakeLocalizer(), FakeLocalizer(), FakeLocalizer()
    evaluate_localizer(first, make_dataset(), fov_deg=90.0, seed=7, batch_size=1)
    evaluate_localizer(second, make_dataset(), fov_deg=90.0, seed=7, batch_size=4)
    evaluate_localizer(other_seed, make_dataset(), fov_deg=90.0, seed=8, batch_size=4)
    assert first.calls == second.calls
    centres = [call[2] for call in first.calls]
    assert all(-180.0 <= c < 180.0 for c in centres) and len(set(centres)) == 4
    assert all(call[1] == 90.0 for call in first.calls)
    assert centres != [call[2] for call in other_seed.calls]
    assert centres == [fov_center_for_query(7, i) for i in range(4)]


def test_full_fov_passes_no_window():
    localizer = FakeLocalizer()
    evaluate_localizer(localizer, make_dataset(), fov_deg=360.0)
    assert all(call[1] is None for call in localizer.calls)


def test_test_yaws_are_seeded_and_in_range():
    yaws_45 = [yaw_for_query(3, i, "45") for i in range(200)]
    yaws_unknown = [yaw_for_query(3, i, "unknown") for i in range(200)]
    assert all(-45.0 <= y < 45.0 for y in yaws_45) and max(yaws_45) > 30 and min(yaws_45) < -30
    assert all(0.0 <= y < 360.0 for y in yaws_unknown) and max(yaws_unknown) > 300
    assert yaws_45 == [yaw_for_query(3, i, "45") for i in range(200)]
    assert yaw_for_query(3, 5, "aligned") == 0.0
    # FoV windows do not depend on the orientation setting
    assert fov_center_for_query(3, 5) == fov_center_for_query(3, 5)


def test_orientation_metrics_and_headings_are_perturbed():
    localizer = FakeLocalizer(orientation_range_deg=45.0)
    result = evaluate_localizer(localizer, make_dataset(), orientation="45", seed=1)
    headings = [call[3] for call in localizer.calls]
    expected = [yaw_for_query(1, i, "45") % 360.0 for i in range(4)]
    assert headings == pytest.approx(expected, abs=1e-4)
    summary = result.to_dict()
    assert summary["ori_mean_deg"] == pytest.approx(2.0, abs=1e-4)
    assert summary["ori_median_deg"] == pytest.approx(2.0, abs=1e-4)
    assert (summary["ori_recall_1deg"], summary["ori_recall_3deg"], summary["ori_recall_5deg"]) == (0.0, 1.0, 1.0)
    assert set(localizer.prior_args) == {(0.0, 45.0)}  # the +-45 deg setting is a prior of 0 +- 45 deg
    full_circle = FakeLocalizer(orientation_range_deg=180.0)
    evaluate_localizer(full_circle, make_dataset(), orientation="unknown", seed=1)
    assert set(full_circle.prior_args) == {(None, None)}


def test_unknown_orientation_with_a_45_degree_model_stops_clearly():
    with pytest.raises(CheckpointError, match="full circle"):
        evaluate_localizer(FakeLocalizer(orientation_range_deg=45.0), make_dataset(), orientation="unknown")
    with pytest.raises(CheckpointError, match="orientation-checkpoint"):
        check_orientation_support(FakeLocalizer(), "45")
    check_orientation_support(FakeLocalizer(orientation_range_deg=180.0), "unknown")
    with pytest.raises(ValueError, match="not one of"):
        check_orientation_support(FakeLocalizer(), "90")


def test_perturb_heading_rolls_the_panorama_and_moves_the_heading():
    sample = make_dataset(1, width=8)[0]
    rotated = perturb_heading(sample, 90.0)
    assert float(rotated[keys.HEADING_GT]) == pytest.approx(90.0)
    # a clockwise turn by 90 deg moves the content left by W/4 = 2 columns
    assert torch.allclose(rotated[keys.PANO], torch.roll(sample[keys.PANO], shifts=-2, dims=-1))
    assert perturb_heading(sample, 0.0) is sample


def test_json_and_per_sample_csv(tmp_path):
    localizer = FakeLocalizer(orientation_range_deg=180.0)
    result = evaluate_localizer(localizer, make_dataset(), orientation="unknown", fov_deg=180.0,
                                setting={"area": "same", "split": "test", "checkpoint": "ck"})
    summary = json.loads(result.write_json(tmp_path / "out" / "eval.json").read_text())
    for key in ("n", "mean_m", "median_m", "recall_1m", "recall_3m", "recall_5m", "per_city", "setting",
                "ori_mean_deg", "ori_median_deg", "ori_recall_1deg", "ori_recall_3deg", "ori_recall_5deg"):
        assert key in summary
    assert summary["setting"]["fov_deg"] == 180.0 and summary["setting"]["orientation"] == "unknown"
    with open(result.write_csv(tmp_path / "rows.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert rows[3]["panorama"] == "pano3.jpg" and rows[3]["city"] == "Beta"
    assert float(rows[3]["error_m"]) == pytest.approx(10.0)
    assert float(rows[0]["u_gt"]) == pytest.approx(4.0)
    assert math.isclose(float(rows[1]["heading_pred_deg"]),
                        (float(rows[1]["heading_true_deg"]) + 2.0) % 360.0, abs_tol=1e-2)
    assert not list(tmp_path.glob("**/.*.tmp"))


def test_queries_without_ground_truth_are_skipped_and_empty_sets_refused():
    samples = make_dataset()
    samples[1][keys.HAS_GT] = torch.tensor(False)
    result = evaluate_localizer(FakeLocalizer(), samples)
    assert result.to_dict()["n"] == 3
    with pytest.raises(DataError):
        evaluate_localizer(FakeLocalizer(), [])


def test_eval_result_without_rows_formats():
    result = EvalResult(setting={"area": "cross"})
    assert result.to_dict()["n"] == 0
    assert "all" in result.format_table()


# ---------------------------------------------------------------- the evaluate command, end to end


def _fake_vigor_writer():
    """The hand-written VIGOR-layout root of the data tests (tests/data/conftest.py)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent / "data" / "conftest.py"
    spec = importlib.util.spec_from_file_location("geodistill_tests_fake_vigor", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.write_fake_vigor


@pytest.fixture(scope="module")
def vigor_and_checkpoints(tmp_path_factory):
    from geodistill.checkpoint import save_checkpoint
    from geodistill.config import config_from_dict
    from geodistill.models.localizer import LocalizerNet
    from geodistill.models.orientation import OrientationEstimator

    base = tmp_path_factory.mktemp("evaluate")
    _fake_vigor_writer()(base / "vigor", panos_per_city=6)
    config = config_from_dict({
        "model": {"backbone": "tiny_cnn", "pretrained": False, "allow_random_init": True, "decoder_width": 16,
                  "level_channels": [16, 8, 4]},
        "data": {"pano_height": 32, "sat_size": 64, "area": "cross"},
        "orientation": {"backbone": "tiny_cnn", "pretrained": False, "allow_random_init": True, "input_size": 64,
                        "hidden": [16]},
    })
    torch.manual_seed(0)
    save_checkpoint(base / "run" / "best", config, {"model": LocalizerNet(config.model).state_dict()},
                    {"task": "weak", "role": "weak"})
    save_checkpoint(base / "ori45", config, {"model": OrientationEstimator(config.orientation).state_dict()},
                    {"task": "orientation", "role": "orientation"})
    return base


def _evaluate_cli(capsys, *argv):
    from geodistill.cli import main

    code = main(["evaluate", *map(str, argv), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evaluate_command_end_to_end(vigor_and_checkpoints, capsys):
    from geodistill.data.vigor import VigorDataset
    from geodistill.inference import Localizer

    base = vigor_and_checkpoints
    code, out, err = _evaluate_cli(capsys, "--checkpoint", base / "run", "--data", base / "vigor", "--area", "cross",
                                   "--fov", "180", "--json", base / "eval.json", "--per-sample", base / "rows.csv",
                                   "--device", "cpu")
    assert code == 0, err
    assert "area=cross" in out and "FoV=180deg" in out and "orientation=aligned" in out and "Chicago" in out
    summary = json.loads((base / "eval.json").read_text())
    assert summary["n"] == 6 and set(summary["per_city"]) == {"Chicago"}
    assert summary["setting"]["fov_deg"] == 180.0 and summary["setting"]["role"] == "weak"
    with open(base / "rows.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 6
    # the CLI reports what the library computes with the same seed
    localizer = Localizer.from_checkpoint(base / "run")
    dataset = VigorDataset(base / "vigor", area="cross", split="test", pano_height=32, sat_size=64)
    direct = evaluate_localizer(localizer, dataset, fov_deg=180.0, seed=0).to_dict()
    assert direct["mean_m"] == pytest.approx(summary["mean_m"]) and direct["recall_5m"] == summary["recall_5m"]


def test_evaluate_tile_centre_baseline(vigor_and_checkpoints, capsys):
    from geodistill.data.vigor import VigorDataset

    base = vigor_and_checkpoints
    code, out, err = _evaluate_cli(capsys, "--checkpoint", "none", "--data", base / "vigor", "--area", "same",
                                   "--json", base / "baseline.json")
    assert code == 0, err
    summary = json.loads((base / "baseline.json").read_text())
    dataset = VigorDataset(base / "vigor", area="same", split="test", pano_height=32, sat_size=64)
    distances = [float(torch.linalg.norm(dataset[i][keys.XY_GT].double())) for i in range(len(dataset))]
    assert summary["n"] == len(dataset) == 4
    assert summary["mean_m"] == pytest.approx(np.mean(distances), abs=1e-5)
    assert summary["setting"]["role"] == "baseline" and "role=baseline" in out


def test_evaluate_command_refuses_unsupported_settings(vigor_and_checkpoints, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(tmp_path / "no-shipped-checkpoints"))  # no default orientation model
    base = vigor_and_checkpoints
    common = ["--checkpoint", base / "run", "--data", base / "vigor"]
    code, _, err = _evaluate_cli(capsys, *common, "--orientation", "unknown", "--orientation-checkpoint", base / "ori45")
    assert code == 2 and "full circle" in err and "range_deg=180" in err
    code, _, err = _evaluate_cli(capsys, *common, "--orientation", "45")
    assert code == 2 and "--orientation-checkpoint" in err
    code, _, err = _evaluate_cli(capsys, "--checkpoint", base / "run", "--data", base / "missing")
    assert code == 2 and "missing" in err
    code, _, err = _evaluate_cli(capsys, *common, "--fov", "0")
    assert code == 2 and "--fov" in err


def test_evaluate_command_with_orientation(vigor_and_checkpoints, capsys):
    base = vigor_and_checkpoints
    code, out, err = _evaluate_cli(capsys, "--checkpoint", base / "run", "--data", base / "vigor", "--orientation",
                                   "45", "--orientation-checkpoint", base / "ori45", "--json", base / "ori.json",
                                   "--limit", "3")
    assert code == 0, err
    summary = json.loads((base / "ori.json").read_text())
    assert summary["n"] == 3 and summary["ori_mean_deg"] is not None and "heading error" in out


def test_the_orientation_setting_decides_whether_the_heading_is_estimated():
    aligned, perturbed = FakeLocalizer(orientation_range_deg=45.0), FakeLocalizer(orientation_range_deg=45.0)
    evaluate_localizer(aligned, make_dataset(), batch_size=2)
    evaluate_localizer(perturbed, make_dataset(), orientation="45", batch_size=2)
    assert aligned.estimate_heading_args == [False, False] and perturbed.estimate_heading_args == [True, True]


def test_aligned_evaluation_ignores_an_attached_orientation_model(vigor_and_checkpoints):
    from geodistill.data.vigor import VigorDataset
    from geodistill.inference import Localizer

    base = vigor_and_checkpoints
    dataset = VigorDataset(base / "vigor", area="cross", split="test", pano_height=32, sat_size=64)
    plain = Localizer.from_checkpoint(base / "run")
    with_estimator = Localizer.from_checkpoint(base / "run", orientation_checkpoint=base / "ori45")
    estimator_calls = []
    with_estimator.orientation.register_forward_hook(lambda *args: estimator_calls.append(1))
    expected = evaluate_localizer(plain, dataset, fov_deg=180.0).to_dict()
    aligned = evaluate_localizer(with_estimator, dataset, fov_deg=180.0).to_dict()
    assert not estimator_calls
    for key in ("n", "mean_m", "median_m", "recall_1m", "recall_3m", "recall_5m"):
        assert aligned[key] == expected[key], key
    # the same localizer estimates (and localizes differently) when its default is used: the test can fail
    estimated = with_estimator.predict_batch([dataset[i] for i in range(len(dataset))], 180.0, 0.0)
    assert estimator_calls and all(p.heading_deg is not None for p in estimated)
    assert [p.error_m for p in estimated] != [p.error_m for p in plain.predict_batch(
        [dataset[i] for i in range(len(dataset))], 180.0, 0.0)]


def test_localizers_satisfy_the_protocol_evaluation_reads():
    import inspect

    from geodistill.evaluation import LocalizerLike
    from geodistill.inference import Localizer, TileCentreBaseline

    expected = list(inspect.signature(LocalizerLike.predict_batch).parameters)
    for cls in (Localizer, TileCentreBaseline, FakeLocalizer):
        assert list(inspect.signature(cls.predict_batch).parameters) == expected, cls
    assert isinstance(TileCentreBaseline(), LocalizerLike) and isinstance(FakeLocalizer(), LocalizerLike)
    assert not isinstance(object(), LocalizerLike)


def test_per_sample_csv_gives_pixels_of_the_tile_file(tmp_path, capsys):
    """Model-grid pixels stay in u_pred..v_gt; *_file_px are pixels of the tile file (here 64 px, fed at 512)."""
    fake = _fake_vigor_writer()(tmp_path / "vigor", panos_per_city=6)
    code, out, err = _evaluate_cli(capsys, "--checkpoint", "none", "--data", tmp_path / "vigor", "--area", "same",
                                   "--per-sample", tmp_path / "rows.csv")
    assert code == 0, err
    with open(tmp_path / "rows.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    for row in rows:
        camera = fake.cameras[row["panorama"]]
        delta_row, delta_col = camera.deltas[0]  # the positive tile, in pixels of VIGOR's 640-px tile
        file_side = int(row["tile_file_px"])
        assert file_side == 64
        assert float(row["u_gt_file_px"]) == pytest.approx((320 - delta_col) * file_side / 640, abs=1e-3)
        assert float(row["v_gt_file_px"]) == pytest.approx((320 + delta_row) * file_side / 640, abs=1e-3)
        assert float(row["u_pred"]) == pytest.approx(256.0) and float(row["u_pred_file_px"]) == pytest.approx(32.0)
        assert float(row["u_gt"]) == pytest.approx(float(row["u_gt_file_px"]) * 8, abs=1e-2)
        east, north = float(row["east_gt_m"]), float(row["north_gt_m"])
        assert float(row["error_m"]) == pytest.approx(math.hypot(east, north), abs=1e-3)

"""``adapt``: GeoDistill on an own area's dataset, no position label in training, a run the job manager lists and a
checkpoint the localizer loads."""

from __future__ import annotations

import torch

from geodistill import keys
from geodistill.calibration import FEATURES, fit_calibrator
from geodistill.checkpoint import read_checkpoint_meta, update_checkpoint_meta
from geodistill.cli import main
from geodistill.config import ADAPT
from geodistill.config import without_pretrained
from geodistill.data.collate import collate_samples
from geodistill.data.vigor import VigorDataset
from geodistill.distill.pipeline import DistillationPipeline
from geodistill.engine.adapt import build_adapt_config
from geodistill.engine.jobs import DONE, JobManager
from geodistill.inference import Localizer


def test_adapt_runs_distillation_listed_by_the_job_manager(tiny_area_dataset, tiny_checkpoint, tmp_path, capsys):
    root, _ = tiny_area_dataset
    start = tiny_checkpoint(tmp_path / "start", task="distill")
    rows = [{name: float(i % 7 + (name == FEATURES[0]) * i) for name in FEATURES} for i in range(40)]
    calibration = fit_calibrator(rows, [i % 3 == 0 for i in range(40)]).to_dict()
    update_checkpoint_meta(start, {"calibration": {"student": calibration}})
    runs = tmp_path / "runs"
    code = main(["adapt", "--checkpoint", str(start), "--data", str(root), "--run-dir", str(runs / "adapt-tiny"),
                 "--epochs", "1", "--batch-size", "1", "--select", "gps", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "to the GPS of the held-back panoramas; no ground truth used" in out
    status = {run.name: run for run in JobManager(runs).list_runs()}["adapt-tiny"]
    assert status.state == DONE and status.task == "distill" and "best" in status.checkpoints
    meta = read_checkpoint_meta(runs / "adapt-tiny" / "best")
    assert meta["task"] == "distill" and meta["config"]["distill"]["init_checkpoint"] == str(start.resolve())
    assert meta["config"]["data"]["root"] == str(root.resolve()) and meta["config"]["data"]["area"] == "same"
    assert meta["calibration"]["student"] == calibration and "fitted before adaptation" in meta["calibration_inherited_from"]
    localizer = Localizer.from_checkpoint(runs / "adapt-tiny" / "best", device="cpu")
    assert localizer.pano_height == 64 and localizer.calibrator is not None


def test_the_distillation_step_never_reads_a_position_label(tiny_area_dataset, tiny_checkpoint, tmp_path):
    root, _ = tiny_area_dataset
    config = build_adapt_config(str(tiny_checkpoint(tmp_path / "start")), root, "x", device="cpu")
    assert config.train.task == "distill" and config.train.noisy_gps_weight == 0.0 and config.data.area == "same"
    dataset = VigorDataset(root, area="same", split="train", pano_height=config.data.pano_height,
                           sat_size=config.data.sat_size)
    batch = collate_samples([dataset[0], dataset[1]])
    scrambled = dict(batch)
    for key in (keys.UV_GT, keys.XY_GT, keys.LATLON_GT):
        scrambled[key] = torch.full_like(batch[key], float("nan"))
    torch.manual_seed(0)
    pipeline = DistillationPipeline(without_pretrained(config).model, config.distill)
    losses = [pipeline.loss(pipeline(b, torch.Generator().manual_seed(5)), b)["total"] for b in (batch, scrambled)]
    assert torch.isfinite(losses[0]) and torch.equal(losses[0], losses[1])


def test_the_recipe_is_applied_under_the_overrides(tiny_area_dataset, tiny_checkpoint, tmp_path):
    root, _ = tiny_area_dataset
    start = str(tiny_checkpoint(tmp_path / "start", task="distill"))
    config = build_adapt_config(start, root, "x", device="cpu")
    assert (config.distill.fov.min_deg, config.distill.fov.max_deg) == ADAPT.fov_deg
    assert config.distill.tau_teacher == ADAPT.tau_teacher
    assert (config.train.epochs, config.train.batch_size, config.optim.lr) == (ADAPT.epochs, ADAPT.batch_size, ADAPT.lr)
    assert config.train.select_by == ("last" if ADAPT.select == "last" else "val_mean")
    narrower = build_adapt_config(start, root, "x", device="cpu", overrides=["distill.fov.min_deg=90"])
    assert (narrower.distill.fov.min_deg, narrower.distill.fov.max_deg) == (90.0, ADAPT.fov_deg[1])

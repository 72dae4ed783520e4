"""The distillation and orientation tasks: their recipes train and evaluate end to end on the CPU."""

from __future__ import annotations

import json
import math

import pytest
import torch

from distill_workspace import RECIPES, data_overrides, distill_config, held_out_split, write_workspace
from geodistill import keys
from geodistill.checkpoint import load_checkpoint, save_checkpoint
from geodistill.config import ConfigError, load_config
from geodistill.data.collate import collate_samples
from geodistill.engine.data import build_datasets
from geodistill.engine.distributed import DistContext
from geodistill.engine.loop import train
from geodistill.engine.tasks.base import resolve_init_checkpoint
from geodistill.engine.tasks.distill import DistillTask
from geodistill.engine.tasks.orientation import (
    OrientationTask,
    hide_outside_random_windows,
    turn_to_heading,
    validation_yaws,
)
from geodistill.errors import CheckpointError
from geodistill.evaluation import evaluate_localizer, perturb_heading, yaw_for_query
from geodistill.geometry.angles import angle_error_deg
from geodistill.inference import Localizer, load_orientation
from geodistill.models.orientation import rotate_panoramas


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return write_workspace(tmp_path_factory.mktemp("distill_orientation"))


def test_tiny_distill_trains_and_evaluates(workspace):
    run = workspace / "tiny_distill"
    result = train(distill_config(workspace), run_dir=run)
    assert result.status == "done" and result.epoch == 2

    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    steps = [e for e in events if e["event"] == "step"]
    assert steps and all(math.isfinite(e["loss/distill"]) for e in steps)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert len(epochs) == 2
    for role in ("student", "teacher"):
        assert math.isfinite(epochs[-1][f"val/{role}/mean_m"])

    best = load_checkpoint(run)
    assert best.meta["task"] == "distill" and best.meta["role"] == "student" and best.meta["deploy"] == "student"
    assert set(best.state_dicts) == {"teacher", "student"}
    teacher_best = load_checkpoint(run / "best_teacher")
    assert teacher_best.meta["deploy"] == "teacher" and teacher_best.meta["role"] == "teacher"
    assert teacher_best.meta["metrics"]["mean_m"] == teacher_best.meta["metrics"]["teacher/mean_m"]
    assert teacher_best.meta["step"] > 0

    initial = load_checkpoint(workspace / "weak").state_dicts["model"]
    last = load_checkpoint(run / "last").state_dicts
    decoder = [name for name in initial if name.startswith("pano_decoder.") and initial[name].is_floating_point()]
    backbone = [name for name in initial if name.startswith("backbone.")]
    assert any(not torch.equal(last["student"][n], initial[n]) for n in decoder), "the student trained"
    assert any(not torch.equal(last["teacher"][n], initial[n]) for n in decoder), "the teacher followed by EMA"
    assert any(not torch.equal(last["teacher"][n], last["student"][n]) for n in decoder), "EMA, not a copy"
    for name in backbone:
        assert torch.equal(last["student"][name], initial[name]) and torch.equal(last["teacher"][name], initial[name])

    # each role's shipped network, evaluated by the inference path on the validation split, reproduces the
    # validation numbers recorded with its checkpoint (a swapped role or a mis-loaded network would not)
    validation = build_datasets(distill_config(workspace), DistContext())[1]
    for folder, role in ((run, "student"), (run / "best_teacher", "teacher")):
        localizer = Localizer.from_checkpoint(folder, role=role)
        assert localizer.role == role
        report = evaluate_localizer(localizer, validation).to_dict()
        recorded = load_checkpoint(folder).meta["metrics"]
        assert report["n"] == len(validation) > 0
        assert report["mean_m"] == pytest.approx(recorded[f"{role}/mean_m"], rel=1e-4)
        assert report["median_m"] == pytest.approx(recorded[f"{role}/median_m"], rel=1e-4)
    limited = evaluate_localizer(Localizer.from_checkpoint(run), held_out_split(workspace), fov_deg=180.0).to_dict()
    assert limited["n"] == len(held_out_split(workspace)) and limited["setting"]["role"] == "student"


def test_tiny_orientation_trains_and_evaluates(workspace):
    run = workspace / "tiny_orientation"
    config = load_config(RECIPES / "tiny_orientation.yaml", data_overrides(workspace / "vigor"))
    result = train(config, run_dir=run)
    assert result.status == "done"
    epochs = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    epochs = [e for e in epochs if e["event"] == "epoch"]
    assert len(epochs) == 2
    best = load_checkpoint(run)
    assert best.meta["task"] == "orientation" and best.meta["role"] == "orientation"
    assert set(best.state_dicts) == {"model"}

    # the saved estimator, loaded as inference loads it, reproduces the validation error recorded with it
    estimator, _, _ = load_orientation(run)
    errors = []
    with torch.no_grad():
        for sample in build_datasets(config, DistContext())[1]:
            batch = collate_samples([sample])
            turned = turn_to_heading(batch, validation_yaws(batch[keys.INDEX], 45.0, config.train.seed))
            errors.append(float(angle_error_deg(estimator(turned)[keys.HEADING], turned[keys.HEADING_GT])))
    assert best.meta["metrics"]["ori_mean_deg"] == pytest.approx(sum(errors) / len(errors), rel=1e-4, abs=1e-4)

    # 3-DoF evaluation: each reported heading is the estimator's on that query's turned panorama, within +-45 deg
    localizer = Localizer.from_checkpoint(workspace / "weak", orientation_checkpoint=run)
    dataset = held_out_split(workspace)
    result = evaluate_localizer(localizer, dataset, orientation="45", seed=0)
    assert len(result.rows) == len(dataset)
    with torch.no_grad():
        for row in result.rows:
            query = perturb_heading(dataset[row["index"]], yaw_for_query(0, row["index"], "45"))
            direct = float(estimator(collate_samples([query]))[keys.HEADING]) % 360.0
            assert row["heading_pred_deg"] == pytest.approx(direct, abs=1e-3)
            assert min(direct, 360.0 - direct) <= 45.0
            assert row["heading_error_deg"] == pytest.approx(float(angle_error_deg(direct, row["heading_true_deg"])),
                                                             abs=2e-3)


def test_distillation_needs_a_weak_checkpoint(workspace, tmp_path):
    with pytest.raises(CheckpointError, match="tiny.yaml"):
        DistillTask(distill_config(workspace, "distill.init_checkpoint="), DistContext())
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        DistillTask(distill_config(workspace, f"distill.init_checkpoint={tmp_path / 'missing'}"), DistContext())
    config = distill_config(workspace)
    save_checkpoint(tmp_path / "ori", config, {"model": {}}, {"task": "orientation", "role": "orientation"})
    with pytest.raises(CheckpointError, match="weak-baseline"):
        DistillTask(distill_config(workspace, f"distill.init_checkpoint={tmp_path / 'ori'}"), DistContext())


def test_init_checkpoint_by_run_name_under_the_runs_root(workspace, monkeypatch):
    monkeypatch.setenv("GEODISTILL_RUNS", str(workspace))
    assert resolve_init_checkpoint("weak") == workspace / "weak" / "best"


def test_per_step_ema_follows_the_cosine_momentum_schedule(workspace):
    task = DistillTask(distill_config(workspace, "distill.ema_mode=per_step", "distill.ema_momentum=0.5",
                                       "distill.ema_momentum_final=0.9"), DistContext())
    task.total_steps = 5
    assert task.momentum_at_step(1) == pytest.approx(0.5)
    assert task.momentum_at_step(3) == pytest.approx(0.7)
    assert task.momentum_at_step(5) == pytest.approx(0.9)
    teacher = task.pipeline.teacher.module
    with torch.no_grad():
        for parameter in task.pipeline.student.pano_decoder.parameters():
            parameter.add_(1.0)
    before = {n: t.clone() for n, t in teacher.state_dict().items()}
    task.on_epoch_end(0)  # per-step mode: no update at the epoch end
    assert all(torch.equal(t, before[n]) for n, t in teacher.state_dict().items())
    task.on_step_end(1, 0)
    name = next(n for n in before if n.startswith("pano_decoder.") and n.endswith("weight"))
    torch.testing.assert_close(teacher.state_dict()[name], before[name] + 0.5)
    assert task.checkpoint_meta() == {"task": "distill", "role": "student", "deploy": "student"}


def test_orientation_turns_each_panorama_to_its_target_heading():
    width = 36
    pano = torch.rand(2, 3, 4, width)
    batch = {keys.PANO: pano, keys.HEADING_GT: torch.tensor([20.0, 0.0])}
    turned = turn_to_heading(batch, torch.tensor([-10.0, 30.0]))  # whole columns: 10 deg per column
    assert turned[keys.HEADING_GT].tolist() == [-10.0, 30.0]
    torch.testing.assert_close(turned[keys.PANO][0], rotate_panoramas(pano[:1], -30.0)[0])
    torch.testing.assert_close(turned[keys.PANO][1], torch.roll(pano[1], -3, dims=-1))
    assert batch[keys.PANO] is pano  # the input batch is left alone
    yaws = validation_yaws([0, 1, 2, 3], 45.0, seed=7)
    assert torch.equal(yaws[2:], validation_yaws([2, 3], 45.0, seed=7))  # independent of batching
    assert bool((yaws.abs() <= 45.0).all()) and len(set(yaws.tolist())) == 4


def test_orientation_training_windows_hide_everything_outside_one_window_per_panorama():
    width = 72  # 5 deg per column
    pano = torch.rand(64, 3, 2, width) + 0.1
    batch = {keys.PANO: pano, keys.HEADING_GT: torch.zeros(64)}
    hidden = hide_outside_random_windows(batch, 90.0, 180.0, torch.Generator().manual_seed(3))
    visible = (hidden[keys.PANO] != 0).all(dim=(1, 2))  # B,W
    assert batch[keys.PANO] is pano and bool((hidden[keys.PANO][visible[:, None, None, :].expand_as(pano)]
                                                == pano[visible[:, None, None, :].expand_as(pano)]).all())
    widths = visible.sum(dim=1) * 5.0
    assert bool(((widths >= 85.0) & (widths <= 185.0)).all()) and widths.max() - widths.min() >= 45.0
    for row in visible:  # one contiguous window on the circle: at most one hidden-to-visible step
        steps = (row.int() - torch.roll(row.int(), 1)).clamp(min=0).sum()
        assert int(steps) == 1
    centres_east = visible[:, width // 2 + width // 4]  # the east column is seen by some windows, not by all
    assert 0 < int(centres_east.sum()) < 64


def test_orientation_training_fov_range_is_checked():
    with pytest.raises(ConfigError, match=r"orientation.train_fov_min_deg \(270\) is larger than"):
        load_config(None, ["orientation.train_fov_min_deg=270", "orientation.train_fov_max_deg=180"])
    with pytest.raises(ConfigError, match="orientation.train_fov_max_deg"):
        load_config(None, ["orientation.train_fov_max_deg=400"])


def test_distill_step_with_feature_cache_matches_the_uncached_step(workspace, tmp_path):
    cached_config = distill_config(workspace, "train.feature_cache=true", f"train.feature_cache_dir={tmp_path}")
    plain_config = distill_config(workspace)
    train_set, val_set = build_datasets(plain_config, DistContext())
    batch = collate_samples([train_set[i] for i in range(2)])
    plain, cached = DistillTask(plain_config, DistContext()), DistillTask(cached_config, DistContext())
    assert plain.cache is None and cached.cache is not None
    for _ in range(2):                                   # a miss, then a hit: the same loss as without the cache
        plain.generator.manual_seed(5)
        cached.generator.manual_seed(5)
        expected = plain.train_step(batch)["total"].item()
        assert cached.train_step(batch)["total"].item() == pytest.approx(expected, abs=1e-3)
    assert cached.cache.misses == 4 and cached.cache.hits == 4   # tiles and full panoramas; the masked view is live
    loader = [collate_samples([val_set[i] for i in range(len(val_set))])]
    with torch.no_grad():
        assert cached.validate(loader)["student/mean_m"] == pytest.approx(plain.validate(loader)["student/mean_m"],
                                                                         abs=0.05)


def test_orientation_training_starts_from_an_init_checkpoint(workspace, tmp_path):
    config = load_config(RECIPES / "tiny_orientation.yaml", data_overrides(workspace / "vigor"))
    source = OrientationTask(config, DistContext()).model
    with torch.no_grad():
        for parameter in source.parameters():
            parameter.add_(torch.randn_like(parameter))
    save_checkpoint(tmp_path / "ori", config, {"model": source.state_dict()}, {"task": "orientation", "role": "orientation"})

    started = OrientationTask(load_config(RECIPES / "tiny_orientation.yaml", data_overrides(workspace / "vigor")
                                          + [f"orientation.init_checkpoint={tmp_path / 'ori'}"]), DistContext())
    for name, tensor in source.state_dict().items():
        assert torch.equal(started.model.state_dict()[name], tensor), name

    with pytest.raises(CheckpointError, match="orientation-estimator checkpoint"):
        OrientationTask(load_config(RECIPES / "tiny_orientation.yaml", data_overrides(workspace / "vigor")
                                    + [f"orientation.init_checkpoint={workspace / 'weak'}"]), DistContext())
    with pytest.raises(CheckpointError, match="orientation.init_checkpoint='nowhere'"):
        OrientationTask(load_config(RECIPES / "tiny_orientation.yaml", data_overrides(workspace / "vigor")
                                    + ["orientation.init_checkpoint=nowhere"]), DistContext())

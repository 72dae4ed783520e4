"""The CCVPE recipes end to end on the CPU: supervised base, GeoDistill on it, inference with heading priors,
evaluation under every orientation setting."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from geodistill.checkpoint import load_checkpoint
from geodistill.config import load_config
from geodistill.errors import GeoDistillError
from distill_workspace import fake_vigor_writer

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "training" / "configs"


def _overrides(root: Path) -> list[str]:
    return [f"data.root={root}", "data.synthetic.generate=false", "data.pano_height=64", "data.sat_size=64",
            "data.area=same", "train.batch_size=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The fake VIGOR root, the tiny_ccvpe run and the tiny_ccvpe_distill run started from it."""
    from geodistill.engine.loop import train

    base = tmp_path_factory.mktemp("ccvpe_runs")
    fake_vigor_writer()(base / "vigor", panos_per_city=6)
    overrides = _overrides(base / "vigor")
    supervised = train(load_config(RECIPES / "tiny_ccvpe.yaml", overrides), run_dir=base / "tiny_ccvpe")
    distill_config = load_config(RECIPES / "tiny_ccvpe_distill.yaml",
                                 [*overrides, f"distill.init_checkpoint={base / 'tiny_ccvpe'}"])
    distilled = train(distill_config, run_dir=base / "tiny_ccvpe_distill")
    assert supervised.status == "done" and distilled.status == "done"
    return base


def _events(run: Path, kind: str) -> list[dict]:
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    return [event for event in events if event["event"] == kind]


def _test_split(base: Path):
    from geodistill.data.vigor import VigorDataset

    return VigorDataset(base / "vigor", area="same", split="test", pano_height=64, sat_size=64)


def test_supervised_run_logs_its_losses_and_heading_errors(runs):
    run = runs / "tiny_ccvpe"
    steps = _events(run, "step")
    assert steps and all(math.isfinite(step[f"loss/{name}"]) for step in steps
                         for name in ("location", "infonce", "orientation"))
    epochs = _events(run, "epoch")
    assert len(epochs) == 2
    assert math.isfinite(epochs[-1]["val/mean_m"]) and 0.0 <= epochs[-1]["val/ori_mean_deg"] <= 180.0
    best = load_checkpoint(run)
    assert best.meta["task"] == "supervised" and best.meta["role"] == "supervised"
    assert best.config.model.architecture == "ccvpe"


def test_distillation_trains_the_ccvpe_student_and_the_teacher_follows(runs):
    run = runs / "tiny_ccvpe_distill"
    steps = _events(run, "step")
    assert steps and all(math.isfinite(step["loss/distill"]) and math.isfinite(step["loss/orientation"])
                         for step in steps)
    epochs = _events(run, "epoch")
    assert all(math.isfinite(epochs[-1][f"val/{role}/mean_m"]) for role in ("student", "teacher"))
    initial = load_checkpoint(runs / "tiny_ccvpe").state_dicts["model"]
    last = load_checkpoint(run / "last").state_dicts
    heads = [name for name in initial if name.startswith("aerial_decoder.") and initial[name].is_floating_point()]
    assert any(not torch.equal(last["student"][n], initial[n]) for n in heads), "the student trained"
    assert any(not torch.equal(last["teacher"][n], initial[n]) for n in heads), "the teacher followed by EMA"
    for name in (n for n in initial if n.startswith("backbone.")):
        assert torch.equal(last["student"][name], initial[name])


@pytest.mark.parametrize("run_name, role", [("tiny_ccvpe", "supervised"), ("tiny_ccvpe_distill", "student")])
def test_ccvpe_checkpoints_evaluate_under_every_orientation_setting(runs, run_name, role):
    from geodistill.evaluation import evaluate_localizer
    from geodistill.inference import Localizer

    localizer = Localizer.from_checkpoint(runs / run_name)
    assert localizer.role == role and localizer.orientation is None
    assert localizer.can_estimate_heading and localizer.orientation_range_deg == 180.0
    dataset = _test_split(runs)
    for orientation in ("aligned", "45", "unknown"):
        report = evaluate_localizer(localizer, dataset, orientation=orientation, fov_deg=180.0, seed=0).to_dict()
        assert report["n"] == len(dataset) and math.isfinite(report["mean_m"])
        if orientation == "aligned":
            assert report.get("ori_mean_deg") is None
        else:
            limit = 90.0 if orientation == "45" else 180.0  # the ±45° prior keeps errors within 90°
            assert 0.0 <= report["ori_mean_deg"] <= limit


def test_predict_reports_the_heading_its_confidence_and_honours_a_prior(runs):
    from geodistill.inference import Localizer

    localizer = Localizer.from_checkpoint(runs / "tiny_ccvpe")
    sample = _test_split(runs)[0]
    free = localizer.predict(sample)
    assert free.heading_deg is not None and 0.0 <= free.heading_deg < 360.0
    assert 0.0 <= free.heading_confidence <= 1.0 + 1e-6
    assert free.to_dict()["heading_confidence"] == free.heading_confidence
    known = localizer.predict(sample, heading_prior_deg=77.0, heading_range_deg=0.0)
    assert known.heading_deg == pytest.approx(77.0, abs=1e-4)
    windowed = localizer.predict(sample, heading_prior_deg=300.0, heading_range_deg=20.0)
    assert min(abs(windowed.heading_deg - 300.0), 360.0 - abs(windowed.heading_deg - 300.0)) <= 20.0 + 1e-4
    aligned = localizer.predict(sample, estimate_heading=False)
    assert aligned.heading_deg is None and aligned.heading_confidence is None
    with pytest.raises(ValueError, match="heading range"):
        localizer.predict(sample, heading_prior_deg=0.0, heading_range_deg=-5.0)


def test_supervised_task_refuses_the_g2sweakly_base(runs):
    from geodistill.engine.distributed import DistContext
    from geodistill.engine.tasks.supervised import SupervisedTask

    config = load_config(RECIPES / "tiny.yaml", [*_overrides(runs / "vigor"), "train.task=supervised"])
    with pytest.raises(GeoDistillError, match="architecture=ccvpe"):
        SupervisedTask(config, DistContext())

"""The weak task end to end: tiny.yaml through the CLI on a fixture VIGOR root, checkpoint consistency,
evaluation of the result, data-root generation, and DDP with gathered negatives."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from geodistill import keys
from geodistill.checkpoint import load_checkpoint
from geodistill.cli import main
from geodistill.config import load_config
from geodistill.engine import data as engine_data
from geodistill.engine.distributed import DistContext
from geodistill.engine.events import read_events
from geodistill.errors import DataError
from geodistill.geometry.panorama import roll_panorama

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "training" / "configs" / "tiny.yaml"


def load_fake_vigor_writer():
    """The hand-written VIGOR-layout fixture of tests/data (64-px tiles, 64x32 panoramas, two cities)."""
    name = "geodistill_tests_fake_vigor"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "data" / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].write_fake_vigor


def fixture_overrides(root: Path) -> list[str]:
    return [f"data.root={root}", "data.synthetic.generate=false", "train.batch_size=2", "data.sat_size=64",
            "data.pano_height=32"]


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vigor") / "root"
    load_fake_vigor_writer()(root)
    return root


@pytest.fixture(scope="module")
def tiny_run(fake_root, tmp_path_factory):
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    code = main(["train", "--config", str(TINY), "--run-dir", str(run_dir), *fixture_overrides(fake_root)])
    return run_dir, code


def test_tiny_recipe_trains_and_validates(tiny_run):
    run_dir, code = tiny_run
    assert code == 0
    assert {"config.yaml", "events.jsonl", "split.json", "last", "best"} <= {p.name for p in run_dir.iterdir()}
    events = read_events(run_dir / "events.jsonl")
    steps = [e for e in events if e["event"] == "step"]
    assert steps and all({"loss/total", "loss/0", "loss/2"} <= set(e) for e in steps)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert len(epochs) == 2 and all(e["val/n"] == 2 and e["val/mean_m"] > 0 for e in epochs)
    split = json.loads((run_dir / "split.json").read_text())
    assert split["seed"] == 2023 and len(split["train"]) + len(split["val"]) == 8
    assert load_config(run_dir / "config.yaml").model.backbone == "tiny_cnn"


def test_best_checkpoint_reproduces_its_validation(tiny_run, fake_root):
    run_dir, _ = tiny_run
    from geodistill.engine.tasks.weak import WeakTask

    best = load_checkpoint(run_dir)
    assert best.task == "weak" and best.role == "weak" and all(k.startswith(("sat_decoder", "pano_decoder", "backbone"))
                                                                for k in best.state_dicts["model"])
    task = WeakTask(best.config, DistContext())
    task.load_state_dicts(best.state_dicts, source=str(best.path))
    task.set_eval_mode()
    _, val = engine_data.build_datasets(best.config, DistContext())
    with torch.no_grad():
        metrics = task.validate(engine_data.build_val_loader(val, best.config, DistContext()))
    assert metrics["mean_m"] == pytest.approx(best.meta["metrics"]["mean_m"], abs=1e-4)


def test_trained_checkpoint_evaluates(tiny_run, fake_root, tmp_path):
    run_dir, _ = tiny_run
    out = tmp_path / "eval.json"
    code = main(["evaluate", "--checkpoint", str(run_dir), "--data", str(fake_root), "--area", "same", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["n"] > 0 and {"mean_m", "median_m", "recall_1m", "recall_3m", "recall_5m", "per_city"} <= set(report)


def test_missing_root_is_generated_when_asked(tmp_path, monkeypatch):
    calls = []

    def fake_generate(root, **kwargs):
        calls.append((Path(root), kwargs))
        Path(root).mkdir(parents=True)

    monkeypatch.setattr(engine_data, "generate_dataset", fake_generate)
    config = load_config(TINY, [f"data.root={tmp_path / 'gen'}"])
    assert engine_data.ensure_dataset(config, DistContext()) == tmp_path / "gen"
    root, kwargs = calls[0]
    assert root == tmp_path / "gen" and kwargs["panos_per_city"] == config.data.synthetic.panos_per_city
    assert kwargs["pano_size"] == (256, 128) and kwargs["tier"] == "easy"
    engine_data.ensure_dataset(config, DistContext())
    assert len(calls) == 1                                            # an existing root is reused
    with pytest.raises(DataError, match="data.synthetic.generate=true"):
        engine_data.ensure_dataset(load_config(TINY, [f"data.root={tmp_path / 'none'}", "data.synthetic.generate=false"]),
                                   DistContext())


def test_relative_root_lives_under_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GEODISTILL_DATA", str(tmp_path))
    assert engine_data.resolve_data_root(load_config(TINY)) == tmp_path / "synthetic" / "tiny"


@pytest.mark.slow
def test_two_ranks_with_gathered_negatives(fake_root, tmp_path):
    from test_distributed import assert_identical, run_two_ranks

    ranks = run_two_ranks(tmp_path, str(TINY), *fixture_overrides(fake_root), "train.batch_size=1",
                          "train.gather_negatives=true", "train.epochs=1")
    assert [r["status"] for r in ranks] == ["done", "done"]
    assert ranks[0]["step"] == ranks[1]["step"] >= 1
    assert_identical(ranks[0]["weights"], ranks[1]["weights"])
    events = read_events(tmp_path / "run" / "events.jsonl")
    assert all(e["loss/total"] > 0 for e in events if e["event"] == "step")   # batch 1 per rank: negatives come from the other rank


def test_heading_noise_turns_each_panorama_and_reports_its_heading(fake_root):
    """The heading the template is built for (``heading_gt`` in the batch) is the one the panorama was turned by."""
    noisy, _ = engine_data.build_datasets(load_config(TINY, [*fixture_overrides(fake_root), "data.heading_noise_deg=90"]),
                                          DistContext())
    plain, _ = engine_data.build_datasets(load_config(TINY, fixture_overrides(fake_root)), DistContext())
    headings = []
    for index in range(3):
        turned, original = noisy[index], plain[index]
        headings.append(float(turned[keys.HEADING_GT]))
        assert float(original[keys.HEADING_GT]) == 0.0
        torch.testing.assert_close(turned[keys.PANO], roll_panorama(original[keys.PANO], headings[-1]), atol=1e-5, rtol=0)
    assert all(min(h, 360.0 - h) <= 90.0 for h in headings) and len(set(headings)) == 3

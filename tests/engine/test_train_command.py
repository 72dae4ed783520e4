"""``python -m geodistill train``: arguments, exit codes, resume and refusals (on the toy task)."""

from __future__ import annotations

import pytest
import yaml
from engine_toy import toy_config

from geodistill.cli import main
from geodistill.config import config_to_dict
from geodistill.engine import tasks
from geodistill.engine.events import read_events


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    monkeypatch.setitem(tasks.TASKS, "weak", "engine_toy:ToyTask")
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(toy_config(epochs=1))))
    return path


def test_config_is_required(capsys):
    assert main(["train"]) == 2
    assert "--config PATH is required" in capsys.readouterr().err


def test_train_resume_and_refusals(recipe, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--config", str(recipe), "--run-dir", str(run_dir)]) == 0
    assert "done: 6 steps, 1 epochs" in capsys.readouterr().out
    assert main(["train", "--config", str(recipe), "--run-dir", str(run_dir)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--run-dir", str(run_dir), "--resume", "train.epochs=2"]) == 2
    assert "train.epochs: 1 -> 2" in capsys.readouterr().err
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--force", "train.epochs=2"]) == 0
    assert "done: 12 steps, 2 epochs" in capsys.readouterr().out
    assert main(["train", "--config", str(recipe), "--run-dir", str(run_dir), "train.bogus=1"]) == 2
    assert "unknown key 'train.bogus'" in capsys.readouterr().err


def test_interrupted_run_exits_130_and_resumes(recipe, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    monkeypatch.setitem(tasks.TASKS, "weak", "engine_toy:StopAtEightToyTask")
    assert main(["train", "--config", str(recipe), "--run-dir", str(run_dir), "train.epochs=2"]) == 130
    assert "--resume" in capsys.readouterr().out
    monkeypatch.setitem(tasks.TASKS, "weak", "engine_toy:ToyTask")
    assert main(["train", "--run-dir", str(run_dir), "--resume"]) == 0
    assert read_events(run_dir / "events.jsonl")[-1]["event"] == "done"


def test_default_run_dir_is_under_runs(recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("GEODISTILL_RUNS", str(tmp_path / "runs"))
    assert main(["train", "--config", str(recipe)]) == 0
    assert (tmp_path / "runs" / "toy" / "last" / "config.json").is_file()


@pytest.mark.parametrize("task, select_by, expected", [
    ("weak", "val_mean", "best epoch 2 (validation mean error 3.250 m; selected on the GT-labelled validation split)"),
    ("orientation", "val_mean",
     "best epoch 2 (validation mean heading error 3.250 deg; selected on the GT-labelled validation split)"),
    ("weak", "last", "best epoch 2 (the last epoch: train.select_by=last, no ground truth used)"),
])
def test_best_epoch_line_names_the_metric_in_its_unit(task, select_by, expected):
    from geodistill.commands.train import best_epoch_line
    from geodistill.config import config_from_dict
    from geodistill.engine.loop import TrainResult

    config = config_from_dict({"train": {"task": task, "select_by": select_by}})
    result = TrainResult(run_dir=None, status="done", step=8, epoch=2, best_epoch=1,
                         best_metric=None if select_by == "last" else 3.25)
    assert best_epoch_line(config, result) == expected

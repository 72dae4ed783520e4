"""The training loop on a toy task: events, checkpoints, selection, resume exactness, refusals."""

from __future__ import annotations

import pytest
import torch
from engine_toy import StopAtEightToyTask, ToyTask, toy_config

from geodistill.checkpoint import load_checkpoint
from geodistill.engine.events import read_events
from geodistill.engine.loop import Trainer, TrainingError, train
from geodistill.engine.rundir import RunError


def step_losses(run_dir):
    return {e["step"]: e["loss/total"] for e in read_events(run_dir / "events.jsonl") if e["event"] == "step"}


def weights(folder):
    return load_checkpoint(folder).state_dicts["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


StopAtEight = StopAtEightToyTask   # mid-epoch 2 (epochs have 6 steps)


class StopAtSix(ToyTask):
    stop_at_step = 6            # the last step of epoch 1


class NanAtThree(ToyTask):
    nan_at_step = 3


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """One uninterrupted toy run, shared by the tests that compare against it."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    torch.set_num_threads(1)
    result = train(toy_config(), run_dir=run_dir, task_cls=ToyTask)
    return run_dir, result


def test_events_and_checkpoints(reference_run):
    run_dir, result = reference_run
    assert result.status == "done" and result.epoch == 3
    assert (run_dir / "config.yaml").is_file() and not (run_dir / "interrupted").exists()
    events = read_events(run_dir / "events.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("epoch") == 3
    start = events[0]
    assert start["total_steps"] == result.step == len(step_losses(run_dir))
    step = next(e for e in events if e["event"] == "step")
    assert {"step", "epoch", "lr", "loss/total", "loss/mse", "loss/l1", "samples_per_s", "eta_s"} <= set(step)
    assert step["lr"] == 0.0  # first warm-up step
    epoch = next(e for e in events if e["event"] == "epoch")
    assert {"val/mean_m", "val/median_m", "val/recall_1m", "val/recall_3m", "val/recall_5m", "train/loss", "best"} <= set(epoch)
    last = load_checkpoint(run_dir / "last", train_state=True)
    assert last.meta["step"] == result.step and last.meta["epoch"] == 3 and last.task == "weak"
    assert {"optimizer", "scheduler", "step", "epoch", "rng", "sampler"} <= set(last.train_state)
    best_epoch = max((e for e in events if e["event"] == "epoch" and e["best"]), key=lambda e: e["epoch"])
    assert load_checkpoint(run_dir / "best").meta["metrics"]["mean_m"] == pytest.approx(best_epoch["val/mean_m"])
    assert result.best_metric == pytest.approx(min(e["val/mean_m"] for e in events if e["event"] == "epoch"))


@pytest.mark.parametrize("task_cls", [StopAtEight, StopAtSix], ids=["mid-epoch", "end-of-epoch"])
def test_interrupt_then_resume_repeats_the_run_exactly(tmp_path, reference_run, task_cls):
    reference_dir, _ = reference_run
    run_dir = tmp_path / "run"
    first = train(toy_config(), run_dir=run_dir, task_cls=task_cls)
    assert first.status == "interrupted" and first.step == task_cls.stop_at_step
    interrupted = load_checkpoint(run_dir / "interrupted", train_state=True)
    assert interrupted.meta["step"] == task_cls.stop_at_step
    assert read_events(run_dir / "events.jsonl")[-1]["event"] == "interrupted"

    second = train(toy_config(), run_dir=run_dir, resume=True, task_cls=ToyTask)
    assert second.status == "done" and second.step == 17
    assert step_losses(run_dir) == step_losses(reference_dir)      # same losses, step by step
    assert_same_weights(weights(run_dir / "last"), weights(reference_dir / "last"))
    assert_same_weights(weights(run_dir / "best"), weights(reference_dir / "best"))
    assert not (run_dir / "interrupted").exists()                  # stale once the run moved past it
    kinds = [e["event"] for e in read_events(run_dir / "events.jsonl")]
    assert kinds.count("start") == 2 and kinds.count("interrupted") == 0 and kinds[-1] == "done"


def test_resume_refuses_a_changed_config_unless_forced(tmp_path):
    run_dir = tmp_path / "run"
    train(toy_config(), run_dir=run_dir, task_cls=StopAtEight)
    with pytest.raises(RunError, match="train.epochs: 3 -> 4"):
        Trainer(toy_config(epochs=4), run_dir=run_dir, resume=True, task_cls=ToyTask)
    Trainer(toy_config(log_every=5), run_dir=run_dir, resume=True, task_cls=ToyTask)   # runtime key: allowed
    result = train(toy_config(epochs=4), run_dir=run_dir, resume=True, force=True, task_cls=ToyTask)
    assert result.status == "done" and result.epoch == 4


def test_new_run_refuses_an_existing_run_unless_forced(tmp_path):
    run_dir = tmp_path / "run"
    train(toy_config(epochs=1), run_dir=run_dir, task_cls=ToyTask)
    with pytest.raises(RunError, match="already holds a run"):
        Trainer(toy_config(epochs=1), run_dir=run_dir, task_cls=ToyTask)
    train(toy_config(epochs=1, seed=3), run_dir=run_dir, force=True, task_cls=ToyTask)
    assert [e["event"] for e in read_events(run_dir / "events.jsonl")].count("start") == 1


def test_resume_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(RunError, match="nothing to resume"):
        Trainer(toy_config(), run_dir=tmp_path / "empty", resume=True, task_cls=ToyTask)


def test_non_finite_loss_stops_with_a_clear_message(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingError, match="non-finite loss at epoch 1, step 3"):
        train(toy_config(), run_dir=run_dir, task_cls=NanAtThree)
    events = read_events(run_dir / "events.jsonl")
    assert events[-1]["event"] == "error" and "non-finite" in events[-1]["message"]


def test_select_by_last_and_max_steps(tmp_path):
    run_dir = tmp_path / "run"
    result = train(toy_config(select_by="last", max_steps_per_epoch=2, epochs=2), run_dir=run_dir, task_cls=ToyTask)
    assert result.step == 4 and result.best_epoch == 1
    assert_same_weights(weights(run_dir / "best"), weights(run_dir / "last"))


def test_seed_changes_the_run(tmp_path, reference_run):
    reference_dir, _ = reference_run
    train(toy_config(seed=8, epochs=1), run_dir=tmp_path / "run", task_cls=ToyTask)
    assert step_losses(tmp_path / "run")[1] != step_losses(reference_dir)[1]


def test_a_cancel_file_written_during_the_setup_stops_the_run_before_its_first_step(tmp_path, monkeypatch,
                                                                                     reference_run):
    """The job manager's cancel file (``$GEODISTILL_CANCEL_FILE``) may appear before the trainer polls anything:
    the run still ends interrupted, resumably, at step 0 (and the resumed run repeats an uninterrupted one)."""
    reference_dir, _ = reference_run
    run_dir = tmp_path / "run"
    cancel_file = tmp_path / "cancel.request"
    cancel_file.write_text("{}")
    monkeypatch.setenv("GEODISTILL_CANCEL_FILE", str(cancel_file))
    first = train(toy_config(), run_dir=run_dir, task_cls=ToyTask)
    assert (first.status, first.step) == ("interrupted", 0)
    assert load_checkpoint(run_dir / "interrupted").meta["step"] == 0
    cancel_file.unlink()
    second = train(toy_config(), run_dir=run_dir, resume=True, task_cls=ToyTask)
    assert second.status == "done" and step_losses(run_dir) == step_losses(reference_dir)


def test_a_cancel_file_mid_run_acts_as_a_first_interrupt(tmp_path, monkeypatch):
    cancel_file = tmp_path / "cancel.request"
    monkeypatch.setenv("GEODISTILL_CANCEL_FILE", str(cancel_file))

    class CancelAtFour(ToyTask):
        def on_step_end(self, step, epoch):
            super().on_step_end(step, epoch)
            if step == 4:
                cancel_file.write_text("{}")

    result = train(toy_config(), run_dir=tmp_path / "run", task_cls=CancelAtFour)
    assert (result.status, result.step) == ("interrupted", 4)

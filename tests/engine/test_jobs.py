"""The job manager against a stand-in trainer (tests/engine/fake_trainer.py) that follows the trainer's
protocol: events.jsonl, SIGINT -> interrupted/, --resume; plus one slow test of the real trainer under
torchrun (the app's browser test drives the real trainer too)."""

import stat
import sys
import time
from pathlib import Path

import pytest

from geodistill.config import ExperimentConfig
from geodistill.engine.jobs import (
    CANCELLED,
    CANCELLING,
    DONE,
    FAILED,
    INTERRUPTED,
    READY,
    RUNNING,
    JobManager,
    check_run_name,
)
from geodistill.engine.rundir import RunError

FAKE_TRAINER = Path(__file__).with_name("fake_trainer.py")


@pytest.fixture
def jobs(tmp_path):
    launcher = tmp_path / "fake_python"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_TRAINER}" "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
    manager = JobManager(tmp_path / "runs", python=str(launcher))
    yield manager
    for run in manager.list_runs():
        if run.active:
            manager.cancel(run.name, force=True)
            manager.wait(run.name, 5)


def _wait_for(condition, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_launch_follow_cancel_resume(jobs, monkeypatch):
    monkeypatch.setenv("FAKE_STEPS", "60")
    status = jobs.start(ExperimentConfig(), "tiny-run")
    assert status.state == RUNNING and status.pid
    assert (jobs.root / "tiny-run" / "config.yaml").is_file()
    running = _wait_for(lambda: (s := jobs.status("tiny-run")).step >= 3 and s)
    assert running.state == RUNNING and running.total_steps == 60 and 0 < running.progress < 1
    assert running.loss == pytest.approx(1.0 / running.step, rel=0.5)

    assert jobs.cancel("tiny-run").state in (CANCELLING, INTERRUPTED)
    stopped = jobs.wait("tiny-run", 20)
    assert stopped.state == INTERRUPTED and "interrupted" in stopped.checkpoints and stopped.step < 60
    assert "training" in jobs.log_tail("tiny-run")

    jobs.launch("tiny-run", resume=True)
    finished = jobs.wait("tiny-run", 30)
    assert finished.state == DONE and finished.progress == 1.0 and finished.step == 60
    assert finished.val_mean_m == 4.0


def test_runs_are_seen_by_a_new_manager_while_running(jobs, monkeypatch):
    monkeypatch.setenv("FAKE_STEPS", "2000")
    jobs.start(ExperimentConfig(), "long")
    other = JobManager(jobs.root)  # as after an app restart
    assert [r.name for r in other.list_runs()] == ["long"]
    assert _wait_for(lambda: other.status("long").step >= 1)
    assert other.status("long").state == RUNNING
    other.cancel("long")
    assert other.wait("long", 20).state == INTERRUPTED
    with pytest.raises(RunError, match="already holds a run"):
        other.launch("long")


def test_cancel_before_the_first_step_is_reported_as_cancelled(jobs, monkeypatch):
    monkeypatch.setenv("FAKE_STEPS", "2000")
    jobs.start(ExperimentConfig(), "early")
    jobs.cancel("early", force=True)
    status = jobs.wait("early", 20)
    assert status.state == CANCELLED and not status.checkpoints


def test_a_crashing_trainer_is_reported(jobs, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "1")
    jobs.start(ExperimentConfig(), "broken")
    status = jobs.wait("broken", 20)
    assert status.state == FAILED and "status 3" in status.message
    assert "boom" in jobs.log_tail("broken")


def test_launching_twice_and_bad_requests(jobs, monkeypatch):
    monkeypatch.setenv("FAKE_STEPS", "2000")
    jobs.start(ExperimentConfig(), "busy")
    with pytest.raises(RunError, match="already running"):
        jobs.launch("busy")
    with pytest.raises(RunError, match="missing"):
        jobs.launch("nothing-here")
    jobs.prepare(ExperimentConfig(), "fresh")
    assert jobs.status("fresh").state == READY
    with pytest.raises(RunError, match="nothing to resume"):
        jobs.launch("fresh", resume=True)


@pytest.mark.parametrize("name", ["../escape", "", "a b", ".hidden", "x" * 65])
def test_run_names_are_checked(name):
    with pytest.raises(RunError, match="not allowed"):
        check_run_name(name)


def test_unique_names_and_commands(tmp_path):
    manager = JobManager(tmp_path, python="py")
    (tmp_path / "tiny-weak").mkdir()
    assert manager.unique_name("tiny weak") == "tiny-weak-2"
    single = manager.command("r1")
    assert single[:4] == ["py", "-m", "geodistill", "train"] and "--run-dir" in single
    multi = manager.command("r1", gpus=2, resume=True)
    assert multi[:5] == ["py", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert multi[5:9] == ["-m", "geodistill", "train", "--config"] and multi[-1] == "--resume"
    assert str(tmp_path / "r1" / "config.yaml") in multi


@pytest.mark.slow
def test_real_trainer_under_torchrun_is_cancelled_gracefully():
    """Two CPU ranks (gloo) of the tiny recipe under torchrun: SIGINT to torchrun reaches every rank, and the run
    saves interrupted/."""
    from geodistill.config import load_config
    from geodistill.settings import REPO_ROOT

    manager = JobManager()  # the real interpreter and the real trainer
    config = load_config(REPO_ROOT / "training" / "configs" / "tiny.yaml")
    config.train.epochs, config.train.max_steps_per_epoch = 50, 4
    manager.start(config, "ddp-tiny", gpus=2)
    try:
        _wait_for(lambda: manager.status("ddp-tiny").step >= 1 or not manager.status("ddp-tiny").active, 400)
        assert manager.status("ddp-tiny").state == RUNNING, manager.log_tail("ddp-tiny")
        manager.cancel("ddp-tiny")
        stopped = manager.wait("ddp-tiny", 120)
        assert stopped.state == INTERRUPTED, manager.log_tail("ddp-tiny")
        assert "interrupted" in stopped.checkpoints and "torch.distributed.run" in manager.log_tail("ddp-tiny", 500)
    finally:
        if manager.status("ddp-tiny").active:
            manager.cancel("ddp-tiny", force=True)


def test_a_cancel_during_the_setup_is_queued_until_the_trainer_honours_it(jobs, monkeypatch):
    """The trainer ignores SIGINT while it sets up (as one started from a shell that ignores it): the cancel is
    not lost, the run ends interrupted (not done), and the same holds for a resumed run."""
    monkeypatch.setenv("FAKE_STEPS", "60")
    monkeypatch.setenv("FAKE_SETUP_S", "1.0")
    jobs.start(ExperimentConfig(), "early-cancel")
    cancelling = jobs.cancel("early-cancel")
    assert cancelling.state == CANCELLING and "Cancel again stops it at once" in cancelling.message
    stopped = jobs.wait("early-cancel", 20)
    assert stopped.state == INTERRUPTED and stopped.step == 0 and "interrupted" in stopped.checkpoints

    jobs.launch("early-cancel", resume=True)  # the earlier cancel does not stop the new launch ...
    assert jobs.status("early-cancel").state == RUNNING
    jobs.cancel("early-cancel")                # ... but a new one during its setup does
    assert jobs.wait("early-cancel", 20).state == INTERRUPTED

    monkeypatch.setenv("FAKE_SETUP_S", "0")
    jobs.launch("early-cancel", resume=True)
    assert jobs.wait("early-cancel", 30).state == DONE  # no stale cancel left behind


def test_a_second_cancel_while_cancelling_can_force_the_stop(jobs, monkeypatch):
    monkeypatch.setenv("FAKE_SETUP_S", "30")
    jobs.start(ExperimentConfig(), "stuck")
    assert jobs.cancel("stuck").state == CANCELLING
    stopped = jobs.cancel("stuck", force=True)
    assert stopped.state == CANCELLED and "at once" in stopped.message


def test_a_refused_start_changes_nothing_on_disk(jobs, monkeypatch):
    monkeypatch.setenv("FAKE_SETUP_S", "30")  # still setting up: no events yet
    config = ExperimentConfig()
    config.train.epochs = 2
    jobs.start(config, "running")
    saved = (jobs.root / "running" / "config.yaml").read_bytes()
    job = (jobs.root / "running" / "job.json").read_bytes()
    config.train.epochs = 50
    with pytest.raises(RunError, match="already running"):
        jobs.start(config, "running")
    with pytest.raises(RunError, match="must be at least 1"):
        jobs.start(config, "other", gpus=0)
    assert (jobs.root / "running" / "config.yaml").read_bytes() == saved
    assert (jobs.root / "running" / "job.json").read_bytes() == job
    assert not (jobs.root / "other").exists()
    jobs.cancel("running", force=True)
    with pytest.raises(RunError, match="already holds a run"):  # launched once: its name stays taken
        jobs.start(config, "running")
    assert (jobs.root / "running" / "config.yaml").read_bytes() == saved

"""Run folders: refusing to mix runs, --force clean-up, choosing the checkpoint to resume."""

from __future__ import annotations

import pytest

from geodistill.checkpoint import save_checkpoint
from geodistill.config import config_from_dict
from geodistill.engine.rundir import RunDir, RunError, default_run_dir


def checkpoint(run: RunDir, kind: str, step: int, config) -> None:
    save_checkpoint(run.path / kind, config, {"model": {}}, {"task": "weak", "role": "weak", "step": step})


def test_default_run_dir_uses_the_runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("GEODISTILL_RUNS", str(tmp_path))
    assert default_run_dir(config_from_dict({"name": "abc"})) == tmp_path / "abc"
    assert default_run_dir(config_from_dict({})) == tmp_path / "run"


def test_newest_of_interrupted_and_last(tmp_path):
    config = config_from_dict({"name": "x"})
    run = RunDir(tmp_path / "run")
    with pytest.raises(RunError, match="nothing to resume"):
        run.newest_checkpoint()
    checkpoint(run, "last", 12, config)
    checkpoint(run, "interrupted", 9, config)       # older than last/: a later epoch finished after it
    assert run.newest_checkpoint() == run.path / "last"
    checkpoint(run, "interrupted", 15, config)
    assert run.newest_checkpoint() == run.path / "interrupted"
    run.discard_stale_interrupted(15)
    assert (run.path / "interrupted").exists()
    run.discard_stale_interrupted(16)
    assert not (run.path / "interrupted").exists()


def test_force_deletes_every_checkpoint_of_the_old_run(tmp_path):
    config = config_from_dict({"name": "x"})
    run = RunDir(tmp_path / "run")
    run.prepare_new(config)
    checkpoint(run, "best", 3, config)
    checkpoint(run, "best_teacher", 3, config)
    (run.path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="already holds a run"):
        run.prepare_new(config)
    run.prepare_new(config, force=True)
    assert sorted(p.name for p in run.path.iterdir()) == ["config.yaml", "notes.txt"]


def test_resume_config_check(tmp_path):
    run = RunDir(tmp_path / "run")
    run.prepare_new(config_from_dict({"name": "x"}))
    assert run.check_resume_config(config_from_dict({"name": "x", "train": {"device": "cpu"}})) == [
        "train.device: 'auto' -> 'cpu'"]
    with pytest.raises(RunError, match="optim.lr"):
        run.check_resume_config(config_from_dict({"name": "x", "optim": {"lr": 1.0}}))
    (run.path / "config.yaml").write_text("optim: [broken\n")
    with pytest.raises(RunError, match="damaged"):
        run.check_resume_config(config_from_dict({"name": "x"}))


@pytest.mark.parametrize("inside", ["", "run"])
def test_a_file_in_the_way_of_the_run_folder_is_a_run_error(tmp_path, inside):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(RunError, match="a_file is a file, not a folder"):
        RunDir(tmp_path / "a_file" / inside).prepare_new(config_from_dict({}))

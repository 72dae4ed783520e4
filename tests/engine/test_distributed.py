"""Two CPU processes on the gloo backend (torchrun): DistributedDataParallel keeps the weights of both ranks
identical while each rank trains on its own batches; without it (the negative control) they drift apart.
Plus the single-process side: the training-step module the loop runs (and DDP wraps)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from distill_workspace import write_workspace
from engine_toy import ToyDataset, ToyTask, toy_config

from geodistill.checkpoint import load_checkpoint
from geodistill.engine.distributed import DistContext, sync_buffers, unwrap, wrap_for_training
from geodistill.engine.events import read_events
from geodistill.engine.loop import Trainer
from geodistill.engine.tasks.base import Task, TrainStep
from geodistill.errors import GeoDistillError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def run_two_ranks(tmp_path: Path, *args: str) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(HERE / "ddp_script.py"), str(tmp_path / "run"), str(tmp_path), *args]
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-4000:]
    return [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in range(2)]


def assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.slow
def test_two_gloo_ranks_hold_identical_weights(tmp_path):
    ranks = run_two_ranks(tmp_path, "toy")
    assert [r["status"] for r in ranks] == ["done", "done"] and [r["step"] for r in ranks] == [4, 4]
    assert all(r["ddp"] and r["trainable_in_ddp"] for r in ranks)        # trained through DistributedDataParallel
    assert_identical(ranks[0]["weights"], ranks[1]["weights"])          # parameters and BatchNorm buffers
    seen = [{i for batch in r["indices"] for i in batch} for r in ranks]
    assert len(ranks[0]["indices"]) == len(ranks[1]["indices"]) == 4    # equal batch counts
    first_epoch = [{i for batch in r["indices"][:2] for i in batch} for r in ranks]
    assert not first_epoch[0] & first_epoch[1] and seen[0] != seen[1]    # each rank its own samples
    toy_tiles = ToyDataset(48, seed=1).tile_names
    for step_batches in zip(ranks[0]["indices"], ranks[1]["indices"]):  # gathered: no tile shared across ranks
        names = [name for batch in step_batches for index in batch for name in toy_tiles(index)]
        assert len(names) == len(set(names)), step_batches
    saved = load_checkpoint(tmp_path / "run" / "last").state_dicts["model"]
    assert_identical({f"model/{k}": v for k, v in saved.items()}, ranks[0]["weights"])   # rank 0 saved
    events = read_events(tmp_path / "run" / "events.jsonl")
    assert events[0]["world_size"] == 2 and sum(e["event"] == "start" for e in events) == 1


@pytest.mark.slow
def test_without_ddp_the_ranks_drift_apart(tmp_path):
    """The negative control: the identity above comes from DDP's gradient averaging, not from luck."""
    ranks = run_two_ranks(tmp_path, "toy-no-ddp")
    assert [r["status"] for r in ranks] == ["done", "done"] and not any(r["ddp"] for r in ranks)
    weights = [r["weights"] for r in ranks]
    differing = [name for name in weights[0] if not torch.equal(weights[0][name], weights[1][name])]
    assert any(name.endswith(".weight") for name in differing), differing


class TeacherStudentToy(ToyTask):
    """The toy network as the student plus a frozen copy as a teacher (as in distillation)."""

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.teacher = torch.nn.Linear(4, 1).requires_grad_(False)

    def networks(self):
        return {"teacher": self.teacher, "student": self.net}


def test_train_step_module_holds_the_trained_networks_only():
    task = TeacherStudentToy(toy_config(), DistContext())
    step = task.train_step_module()
    assert isinstance(step, TrainStep) and list(step.trained) == ["student"]
    assert {id(p) for p in step.parameters()} == {id(p) for p in task.net.parameters()}
    batch = {"x": torch.randn(4, 4), "y": torch.randn(4), "index": torch.arange(4)}
    torch.manual_seed(0)
    task.generator.manual_seed(5)
    through_module = step(batch)
    torch.manual_seed(0)
    task.generator.manual_seed(5)
    direct = task.train_step(batch)
    assert all(torch.equal(through_module[k], direct[k]) for k in direct)


def test_a_trainable_parameter_outside_the_trained_networks_is_an_error():
    class Stray(ToyTask):
        def __init__(self, config, ctx):
            super().__init__(config, ctx)
            self.extra = torch.nn.Parameter(torch.zeros(3))

        def trainable_parameters(self):
            return [*self.net.parameters(), self.extra]

    with pytest.raises(GeoDistillError, match="1 trainable parameter tensor"):
        Stray(toy_config(), DistContext()).train_step_module()


def test_a_single_process_runs_the_bare_step_module(tmp_path):
    trainer = Trainer(toy_config(epochs=1, max_steps_per_epoch=1), run_dir=tmp_path / "run", task_cls=ToyTask)
    assert isinstance(trainer.step_module, TrainStep) and trainer.step_module.task is trainer.task
    assert wrap_for_training(trainer.step_module, DistContext()) is trainer.step_module
    assert unwrap(trainer.step_module) is trainer.step_module
    before = {k: v.clone() for k, v in trainer.task.net.state_dict().items()}
    sync_buffers(trainer.step_module, DistContext())                       # no-op alone
    assert all(torch.equal(before[k], v) for k, v in trainer.task.net.state_dict().items())
    assert trainer.train().status == "done"


def test_base_task_defaults_to_networks_with_trainable_parameters():
    class Two(Task):
        def __init__(self):
            self.frozen = torch.nn.Linear(2, 2).requires_grad_(False)
            self.trained = torch.nn.Linear(2, 2)

        def networks(self):
            return {"frozen": self.frozen, "trained": self.trained}

    assert list(Two().trained_networks()) == ["trained"]


@pytest.fixture(scope="module")
def real_task_workspace(tmp_path_factory):
    """The VIGOR-layout fixture root and a weak checkpoint (random decoders) to distill from."""
    return write_workspace(tmp_path_factory.mktemp("ddp_tasks"))


def real_overrides(base: Path) -> list[str]:
    return [f"data.root={base / 'vigor'}", "data.synthetic.generate=false", "data.pano_height=32", "data.sat_size=64",
            "data.area=same", "train.batch_size=2", "train.epochs=1", "train.max_steps_per_epoch=2"]


@pytest.mark.slow
def test_two_ranks_distill_keep_student_and_teacher_identical(real_task_workspace, tmp_path):
    """The student trains in DDP; the per-step EMA teacher, outside DDP, follows it identically on both ranks."""
    base = real_task_workspace
    ranks = run_two_ranks(tmp_path, str(REPO / "training" / "configs" / "tiny_distill.yaml"), *real_overrides(base),
                          f"distill.init_checkpoint={base / 'weak'}", "distill.ema_mode=per_step",
                          "train.batch_size=1")
    assert [r["status"] for r in ranks] == ["done", "done"] and ranks[0]["step"] == ranks[1]["step"] >= 2
    assert all(r["ddp"] and r["trainable_in_ddp"] for r in ranks)
    weights = ranks[0]["weights"]
    assert {name.split("/")[0] for name in weights} == {"student", "teacher"}
    assert_identical(weights, ranks[1]["weights"])
    start = load_checkpoint(base / "weak").state_dicts["model"]
    moved = [k for k, v in start.items() if k.startswith("sat_decoder") and not torch.equal(v, weights[f"teacher/{k}"])]
    assert moved                                                     # the teacher did follow the student


@pytest.mark.slow
def test_two_ranks_orientation_keep_batchnorm_statistics_identical(real_task_workspace, tmp_path):
    ranks = run_two_ranks(tmp_path, str(REPO / "training" / "configs" / "tiny_orientation.yaml"),
                          *real_overrides(real_task_workspace))
    assert [r["status"] for r in ranks] == ["done", "done"] and all(r["ddp"] for r in ranks)
    assert any(name.endswith("running_mean") for name in ranks[0]["weights"])
    assert_identical(ranks[0]["weights"], ranks[1]["weights"])


def test_parameters_without_gradient_are_named():
    from geodistill.engine.distributed import parameters_without_gradient

    net = torch.nn.ModuleDict({"used": torch.nn.Linear(2, 1), "unused": torch.nn.Linear(2, 1),
                               "frozen": torch.nn.Linear(2, 1).requires_grad_(False)})
    net["used"](torch.ones(1, 2)).sum().backward()
    assert parameters_without_gradient(net) == ["unused.weight", "unused.bias"]
    assert parameters_without_gradient(net, limit=1) == ["unused.weight", "..."]

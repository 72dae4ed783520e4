"""The wiring of the distillation task: EMA direction and schedule per mode, teacher weights in validation, and
the teacher/student role mapping of checkpoints. Each test fails on a swapped or mis-scheduled connection."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from distill_workspace import distill_config, held_out_split, write_workspace
from geodistill import keys
from geodistill.checkpoint import WEIGHTS_FILE, load_checkpoint, save_checkpoint
from geodistill.data.collate import collate_samples
from geodistill.distill.ema import ema_momentum_schedule
from geodistill.distill.pipeline import DistillationPipeline
from geodistill.engine.distributed import DistContext
from geodistill.engine.loop import train
from geodistill.engine.tasks.distill import DistillTask
from geodistill.inference import Localizer


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return write_workspace(tmp_path_factory.mktemp("distill_wiring"))


def make_task(workspace, *extra: str) -> DistillTask:
    return DistillTask(distill_config(workspace, *extra), DistContext())


def shift_student(task: DistillTask, amount: float = 1.0) -> None:
    """Move every student decoder parameter by ``amount`` (the teacher starts as an exact copy)."""
    with torch.no_grad():
        for parameter in task.pipeline.student.pano_decoder.parameters():
            parameter.add_(amount)


def decoder_state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The panorama decoder's parameters (state-dict names), copied."""
    return {f"pano_decoder.{name}": parameter.detach().clone()
            for name, parameter in network.pano_decoder.named_parameters()}


def assert_moved_by(network, before: dict[str, torch.Tensor], amount: float) -> None:
    after = decoder_state(network)
    assert before
    for name in before:
        torch.testing.assert_close(after[name], before[name] + amount, msg=name)


def test_per_epoch_ema_keeps_most_of_the_teacher(workspace):
    task = make_task(workspace, "distill.ema_mode=per_epoch", "distill.ema_momentum=0.9")
    teacher = task.pipeline.teacher.module
    before = decoder_state(teacher)
    shift_student(task, 1.0)
    task.on_step_end(1, 0)  # per-epoch mode: no update after a step
    assert_moved_by(teacher, before, 0.0)
    task.on_epoch_end(0)  # teacher <- 0.9 teacher + 0.1 student = teacher + 0.1
    assert_moved_by(teacher, before, 0.1)


def test_per_step_ema_keeps_most_of_the_teacher(workspace):
    task = make_task(workspace, "distill.ema_mode=per_step", "distill.ema_momentum=0.8",
                     "distill.ema_momentum_final=0.95")
    task.total_steps = 4
    teacher = task.pipeline.teacher.module
    before = decoder_state(teacher)
    shift_student(task, 1.0)
    task.on_step_end(1, 0)  # first step: momentum 0.8 -> teacher + 0.2
    assert_moved_by(teacher, before, 0.2)


@pytest.mark.parametrize(("mode", "expected"), [
    ("per_epoch", [0.8, 0.8]),  # once per epoch, at the configured momentum
    ("per_step", list(ema_momentum_schedule(0.8, 0.95, 4))),  # every optimizer step, along the cosine schedule
])
def test_the_training_loop_updates_the_teacher_once_per_epoch_or_step(workspace, monkeypatch, mode, expected):
    momenta: list[float] = []
    original = DistillationPipeline.update_teacher

    def recording(self, momentum):
        momenta.append(float(momentum))
        original(self, momentum)

    monkeypatch.setattr(DistillationPipeline, "update_teacher", recording)
    config = distill_config(workspace, f"distill.ema_mode={mode}", "distill.ema_momentum=0.8",
                            "distill.ema_momentum_final=0.95", "train.epochs=2", "train.max_steps_per_epoch=2",
                            "train.val_limit=2")
    result = train(config, run_dir=workspace / f"ema_{mode}")
    assert result.status == "done" and result.step == 4
    assert momenta == pytest.approx(expected)


def test_validation_reports_each_role_with_its_own_weights(workspace):
    task = make_task(workspace)
    torch.manual_seed(1)
    with torch.no_grad():  # a student unlike the teacher, so that the two roles localize differently
        for parameter in task.pipeline.student.pano_decoder.parameters():
            parameter.normal_(0.0, 0.5)
    samples = [held_out_split(workspace)[i] for i in range(4)]
    batches = [collate_samples(samples[:2]), collate_samples(samples[2:])]
    metrics = task.validate(batches)
    networks = {"teacher": task.pipeline.teacher.module, "student": task.pipeline.student}
    expected = {}
    with torch.no_grad():
        for role, network in networks.items():
            network.eval()
            errors = [torch.linalg.norm(network(batch)[keys.XY_MAX].double() - batch[keys.XY_GT].double(), dim=-1)
                      for batch in batches]
            expected[role] = float(torch.cat(errors).mean())
    assert expected["teacher"] != pytest.approx(expected["student"], abs=1e-3), "the roles must differ for the test"
    for role in networks:
        assert metrics[f"{role}/mean_m"] == pytest.approx(expected[role], abs=1e-5), role
    assert metrics["mean_m"] == metrics["student/mean_m"]  # the deployed network


def test_checkpoints_keep_each_network_under_its_role(workspace, tmp_path):
    task = make_task(workspace)
    shift_student(task, 0.5)
    teacher, student = task.pipeline.teacher.module, task.pipeline.student
    name = next(iter(decoder_state(teacher)))
    folder = save_checkpoint(tmp_path / "distill", task.config, task.state_dicts(), task.checkpoint_meta())
    stored = load_file(str(folder / WEIGHTS_FILE))  # the file format: teacher.<name> and student.<name>
    assert torch.equal(stored[f"teacher.{name}"], teacher.state_dict()[name])
    assert torch.equal(stored[f"student.{name}"], student.state_dict()[name])
    assert not torch.equal(stored[f"teacher.{name}"], stored[f"student.{name}"])

    resumed = make_task(workspace)  # both networks start as the weak checkpoint
    resumed.load_state_dicts(load_checkpoint(folder).state_dicts)
    for role, network in (("teacher", resumed.pipeline.teacher.module), ("student", resumed.pipeline.student)):
        original = {"teacher": teacher, "student": student}[role].state_dict()
        assert all(torch.equal(tensor, original[key]) for key, tensor in network.state_dict().items()), role
        loaded = Localizer.from_checkpoint(folder, role=role).model.state_dict()
        assert torch.equal(loaded[name].cpu(), original[name]), role
    assert torch.equal(Localizer.from_checkpoint(folder).model.state_dict()[name].cpu(), student.state_dict()[name])

"""Checkpoint folders: round trip, atomic writes, damaged and mismatched files."""

from __future__ import annotations

import json

import pytest
import torch

from geodistill import checkpoint as ckpt_module
from geodistill.checkpoint import (
    Checkpoint,
    load_checkpoint,
    load_state_dict_checked,
    network_for_role,
    resolve_checkpoint,
    save_checkpoint,
)
from geodistill.config import config_from_dict
from geodistill.errors import CheckpointError


def small_net(width: int = 8) -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.BatchNorm2d(width), torch.nn.ReLU(),
                              torch.nn.Conv2d(width, 2, 1))
    net.train()
    net(torch.rand(4, 3, 8, 8))  # move the BatchNorm running statistics away from their defaults
    return net.eval()


@pytest.fixture
def config():
    return config_from_dict({"name": "ckpt-test", "optim": {"lr": 3e-4}, "model": {"levels": [1, 2]}})


def save_weak(path, config, net, **kwargs):
    meta = {"task": "weak", "role": "weak", "metrics": {"mean_m": 1.5}, "epoch": 2, "step": 10}
    return save_checkpoint(path, config, {"model": net.state_dict()}, meta, **kwargs)


def test_round_trip_gives_identical_predictions(tmp_path, config):
    net = small_net()
    folder = save_weak(tmp_path / "best", config, net)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "weights.safetensors"]
    loaded = load_checkpoint(folder)
    assert isinstance(loaded, Checkpoint) and loaded.task == "weak" and loaded.role == "weak"
    assert loaded.config == config
    assert loaded.meta["metrics"] == {"mean_m": 1.5} and loaded.meta["step"] == 10 and loaded.meta["version"] == 1
    fresh = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1))
    load_state_dict_checked(fresh, network_for_role(loaded), folder)
    fresh.eval()
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(fresh(x), net(x))


def test_saving_the_same_weights_twice_gives_the_same_bytes(tmp_path, config):
    import hashlib

    net = small_net()
    digests = set()
    for attempt in range(6):  # a multi-entry safetensors metadata map came out in random order
        folder = save_weak(tmp_path / f"copy{attempt}", config, net)
        digests.add(hashlib.sha256((folder / "weights.safetensors").read_bytes()).hexdigest())
    assert len(digests) == 1


def test_config_json_is_documented_shape(tmp_path, config):
    folder = save_checkpoint(tmp_path / "c", config, {"teacher": small_net().state_dict(), "student": small_net().state_dict()},
                             {"task": "distill", "role": "student", "deploy": "student"})
    document = json.loads((folder / "config.json").read_text())
    assert document["format"] == "geodistill-checkpoint" and document["version"] == 1
    assert {"geodistill_version", "task", "role", "deploy", "config", "metrics", "epoch", "step", "created"} <= set(document)
    from safetensors.torch import load_file

    names = load_file(str(folder / "weights.safetensors"))
    assert all(name.startswith(("teacher.", "student.")) for name in names)


def test_train_state_round_trip_weights_only(tmp_path, config):
    net = small_net()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net(torch.rand(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    state = {"optimizer": optimizer.state_dict(), "step": 5, "rng": [{"torch": torch.get_rng_state()}],
             "sampler": {"epoch": 1, "position": 3}}
    folder = save_weak(tmp_path / "last", config, net, train_state=state)
    loaded = load_checkpoint(folder, train_state=True)
    assert loaded.train_state["step"] == 5 and loaded.train_state["sampler"] == {"epoch": 1, "position": 3}
    again = torch.optim.AdamW(net.parameters(), lr=1e-3)
    again.load_state_dict(loaded.train_state["optimizer"])
    assert torch.equal(again.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_train_state_with_objects_is_refused(tmp_path, config):
    import argparse

    folder = save_weak(tmp_path / "last", config, small_net())
    torch.save({"payload": argparse.Namespace(code="would run on load")}, folder / "train_state.pt")
    with pytest.raises(CheckpointError, match="train_state.pt"):
        load_checkpoint(folder, train_state=True)
    (folder / "train_state.pt").unlink()
    with pytest.raises(CheckpointError, match="train_state.pt: missing"):
        load_checkpoint(folder, train_state=True)


def test_failed_write_leaves_no_partial_folder(tmp_path, config, monkeypatch):
    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_weak(tmp_path / "last", config, small_net(), train_state={"step": 1})
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_checkpoint(tmp_path, config, monkeypatch):
    folder = save_weak(tmp_path / "last", config, small_net(), train_state={"step": 1})
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_weak(folder, config, small_net(16), train_state={"step": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["last"]
    assert load_checkpoint(folder, train_state=True).train_state == {"step": 1}


def test_overwrite_replaces_completely(tmp_path, config):
    folder = save_weak(tmp_path / "last", config, small_net(), train_state={"step": 1})
    save_weak(folder, config, small_net())
    assert not (folder / "train_state.pt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["last"]


def test_damaged_weights_name_the_file(tmp_path, config):
    folder = save_weak(tmp_path / "c", config, small_net())
    data = (folder / "weights.safetensors").read_bytes()
    (folder / "weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="weights.safetensors"):
        load_checkpoint(folder)
    (folder / "weights.safetensors").unlink()
    with pytest.raises(CheckpointError, match="weights.safetensors: missing"):
        load_checkpoint(folder)


@pytest.mark.parametrize("edit,message", [
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: json.dumps({**d, "version": 99}), "version 99"),
    (lambda d: json.dumps({**d, "format": "something-else"}), "not a GeoDistill checkpoint"),
    (lambda d: json.dumps({k: v for k, v in d.items() if k != "task"}), "no 'task'"),
    (lambda d: json.dumps({**d, "config": {**d["config"], "optim": {"learning_rate": 1}}}), "does not fit"),
])
def test_damaged_or_foreign_config_json(tmp_path, config, edit, message):
    folder = save_weak(tmp_path / "c", config, small_net())
    document = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(edit(document))
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(folder)
    assert "config.json" in str(info.value)


def test_architecture_mismatch_is_a_checkpoint_error(tmp_path, config):
    folder = save_weak(tmp_path / "c", config, small_net(8))
    loaded = load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="wrong shape") as info:
        load_state_dict_checked(small_net(16), loaded.state_dicts["model"], folder)
    assert str(folder) in str(info.value)
    with pytest.raises(CheckpointError, match="missing"):
        load_state_dict_checked(torch.nn.Sequential(*small_net(8), torch.nn.Conv2d(2, 2, 1)), loaded.state_dicts["model"], folder)


def test_resolve_and_roles(tmp_path, config):
    run = tmp_path / "run"
    save_weak(run / "best", config, small_net())
    assert resolve_checkpoint(run) == run / "best"
    assert load_checkpoint(run).path == run / "best"
    with pytest.raises(CheckpointError, match="no such"):
        resolve_checkpoint(tmp_path / "nowhere")
    save_weak(tmp_path / "other" / "last", config, small_net())
    with pytest.raises(CheckpointError, match="checkpoints in it: last"):
        resolve_checkpoint(tmp_path / "other")
    weak = load_checkpoint(run)
    with pytest.raises(CheckpointError, match="no teacher"):
        network_for_role(weak, "teacher")
    teacher, student = small_net(8), small_net(8)
    torch.nn.init.zeros_(student[0].weight)
    save_checkpoint(tmp_path / "d", config, {"teacher": teacher.state_dict(), "student": student.state_dict()},
                    {"task": "distill", "role": "student", "deploy": "teacher"})
    distill = load_checkpoint(tmp_path / "d")
    assert torch.equal(network_for_role(distill)["0.weight"], teacher[0].weight)            # deploy network
    assert torch.equal(network_for_role(distill, "student")["0.weight"], student[0].weight)


def test_a_file_given_as_checkpoint_is_a_checkpoint_error(tmp_path, config):
    file = tmp_path / "weights.safetensors"
    file.write_bytes(b"not a folder")
    with pytest.raises(CheckpointError, match="a file, not a checkpoint folder"):
        resolve_checkpoint(file)


def test_save_rejects_bad_meta(tmp_path, config):
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path / "c", config, {"model": {}}, {"task": "weak"})
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path / "c", config, {"net": small_net().state_dict()}, {"task": "weak", "role": "weak"})
    assert not any(p.name.startswith(".c.tmp") for p in tmp_path.iterdir())
    assert ckpt_module.VERSION == 1


def test_relative_names_are_found_under_the_runs_and_checkpoints_roots(tmp_path, config, monkeypatch):
    runs, shipped, elsewhere = tmp_path / "myruns", tmp_path / "myckpts", tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.setenv("GEODISTILL_RUNS", str(runs))
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(shipped))
    monkeypatch.chdir(elsewhere)
    save_weak(runs / "exp1" / "best", config, small_net())
    save_weak(shipped / "weak_baseline", config, small_net())
    assert resolve_checkpoint("runs/exp1") == runs / "exp1" / "best"       # README spelling, roots moved
    assert resolve_checkpoint("exp1") == runs / "exp1" / "best"
    assert resolve_checkpoint("checkpoints/weak_baseline") == shipped / "weak_baseline"
    with pytest.raises(CheckpointError, match="no such"):
        resolve_checkpoint("runs/missing")

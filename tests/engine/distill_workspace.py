"""A tiny VIGOR-layout root and a weak checkpoint of the tiny.yaml localizer, for the distillation tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from geodistill.checkpoint import save_checkpoint
from geodistill.config import load_config
from geodistill.models.localizer import LocalizerNet

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "training" / "configs"


def fake_vigor_writer():
    """The hand-written VIGOR-layout root of the data tests (tests/data/conftest.py)."""
    path = REPO / "tests" / "data" / "conftest.py"
    spec = importlib.util.spec_from_file_location("geodistill_tests_fake_vigor", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.write_fake_vigor


def data_overrides(root: Path) -> list[str]:
    return [f"data.root={root}", "data.synthetic.generate=false", "data.pano_height=32", "data.sat_size=64",
            "data.area=same", "train.batch_size=2"]


def write_workspace(base: Path) -> Path:
    """``base/vigor`` (6 panoramas per city) and ``base/weak/best`` (random decoders of tiny.yaml)."""
    fake_vigor_writer()(base / "vigor", panos_per_city=6)
    weak = load_config(RECIPES / "tiny.yaml", data_overrides(base / "vigor"))
    torch.manual_seed(0)
    save_checkpoint(base / "weak" / "best", weak, {"model": LocalizerNet(weak.model).state_dict()},
                    {"task": "weak", "role": "weak"})
    return base


def distill_config(workspace: Path, *extra: str):
    """tiny_distill.yaml on the workspace, starting from its weak checkpoint."""
    overrides = [*data_overrides(workspace / "vigor"), f"distill.init_checkpoint={workspace / 'weak'}", *extra]
    return load_config(RECIPES / "tiny_distill.yaml", overrides)


def held_out_split(workspace: Path):
    from geodistill.data.vigor import VigorDataset

    return VigorDataset(workspace / "vigor", area="same", split="test", pano_height=32, sat_size=64)

"""The CCVPE tasks through the frozen-backbone tap cache: turned cached ground taps, validation equal to the
uncached one, entries of their own, and distillation reading the tiles and the teacher's view from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from geodistill import keys
from geodistill.config import load_config
from geodistill.engine import data as engine_data
from geodistill.engine.distributed import DistContext
from geodistill.engine.feature_cache import BackboneTapCache, ground_kind
from geodistill.engine.tasks.supervised import SupervisedTask, turn_ground_taps
from geodistill.models.factory import build_localizer

from test_weak_training import REPO, TINY, load_fake_vigor_writer

TINY_CCVPE = REPO / "training" / "configs" / "tiny_ccvpe.yaml"


def _overrides(root: Path, cache: Path) -> list[str]:
    return [f"data.root={root}", "data.synthetic.generate=false", "train.batch_size=2", "data.sat_size=64",
            "data.pano_height=64", f"train.feature_cache_dir={cache}"]


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vigor_ccvpe_cache") / "root"
    load_fake_vigor_writer()(root)
    return root


def test_turning_ground_taps_rolls_their_columns_like_the_panorama():
    taps = [torch.arange(8.0).view(1, 1, 1, 8).repeat(2, 3, 2, 1)]
    turned = turn_ground_taps(taps, torch.tensor([90.0, -45.0]))[0]    # 8 columns: 2 and -1 columns
    assert turned[0, 0, 0].tolist() == torch.roll(torch.arange(8.0), -2).tolist()
    assert turned[1, 0, 0].tolist() == torch.roll(torch.arange(8.0), 1).tolist()


def test_ccvpe_panorama_taps_never_share_entries_with_the_weak_base(tmp_path):
    torch.manual_seed(0)
    weak = build_localizer(load_config(TINY).model)
    torch.manual_seed(0)                                              # the same random backbone weights
    ccvpe = build_localizer(load_config(TINY_CCVPE).model)
    pano = torch.rand(1, 3, 64, 128)
    weak_cache, ccvpe_cache = BackboneTapCache(weak, tmp_path), BackboneTapCache(ccvpe, tmp_path)
    assert weak_cache.fingerprint == ccvpe_cache.fingerprint       # one backbone: tiles are shared
    assert ground_kind(weak) == "pano" and ground_kind(ccvpe).startswith("pano-ccvpe:")
    assert weak_cache.key(ground_kind(weak), pano[0]) != ccvpe_cache.key(ground_kind(ccvpe), pano[0])
    weak_cache.ground_taps(pano)
    taps = ccvpe_cache.ground_taps(pano)                             # a miss: not the weak base's entry
    assert ccvpe_cache.misses == 1 and len(taps) == 1 and torch.equal(taps[0], ccvpe.ground_taps(pano)[0].half().float())


def test_supervised_task_trains_and_validates_through_the_cache(fake_root, tmp_path):
    overrides = _overrides(fake_root, tmp_path / "cache")
    plain_config = load_config(TINY_CCVPE, overrides)
    cached_config = load_config(TINY_CCVPE, [*overrides, "train.feature_cache=true"])
    train, val = engine_data.build_datasets(plain_config, DistContext())
    batch = next(iter(engine_data.build_train_loader(train, plain_config, DistContext())))
    torch.manual_seed(0)
    plain = SupervisedTask(plain_config, DistContext())
    torch.manual_seed(0)
    cached = SupervisedTask(cached_config, DistContext())
    assert cached.cache is not None and plain.cache is None
    for _ in range(2):
        losses = cached.train_step(batch)
        assert torch.isfinite(losses["total"]) and set(losses) == {"total", "location", "infonce", "orientation"}
    size = len(batch[keys.PANO])
    assert (cached.cache.misses, cached.cache.hits) == (2 * size, 2 * size)  # tile and panorama once, then read
    loader = engine_data.build_val_loader(val, plain_config, DistContext())
    cached.set_eval_mode(), plain.set_eval_mode()
    with torch.no_grad():
        expected, got = plain.validate(loader), cached.validate(loader)
    assert got["mean_m"] == pytest.approx(expected["mean_m"], abs=0.05)
    assert got["ori_mean_deg"] == pytest.approx(expected["ori_mean_deg"], abs=0.5)


def test_ccvpe_distillation_reads_the_cached_taps_whatever_the_heading(fake_root, tmp_path, tiny_checkpoint):
    """The random heading of each step turns the cached taps of the panorama as stored: no new entry per heading."""
    from geodistill.engine.tasks.distill import DistillTask

    tiny_checkpoint(tmp_path / "base", task="supervised")
    config = load_config(REPO / "training" / "configs" / "tiny_ccvpe_distill.yaml",
                         [*_overrides(fake_root, tmp_path / "cache"), "train.feature_cache=true",
                          f"distill.init_checkpoint={tmp_path / 'base'}"])
    train, val = engine_data.build_datasets(config, DistContext())
    batch = next(iter(engine_data.build_train_loader(train, config, DistContext())))
    task = DistillTask(config, DistContext())
    task.set_train_mode()
    for _ in range(3):
        losses = task.train_step(batch)
        assert torch.isfinite(losses["total"])
    size = len(batch[keys.PANO])
    assert (task.cache.misses, task.cache.hits) == (2 * size, 4 * size)
    loader = engine_data.build_val_loader(val, config, DistContext())
    with torch.no_grad():
        assert task.validate(loader)["student/n"] == len(val)

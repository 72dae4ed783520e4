"""The frozen-backbone tap cache: same taps as the backbone (float16-rounded), hits after the first pass, keys
that change with the backbone and the image, damaged entries recomputed, and the weak task trained through it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from geodistill.cli import main
from geodistill.config import load_config
from geodistill.engine import data as engine_data
from geodistill.engine.distributed import DistContext
from geodistill.engine.events import read_events
from geodistill.engine.feature_cache import BackboneTapCache
from geodistill.engine.tasks.weak import WeakTask
from geodistill.models.localizer import LocalizerNet

from test_weak_training import TINY, fixture_overrides, load_fake_vigor_writer


def tiny_model(seed: int = 0) -> LocalizerNet:
    torch.manual_seed(seed)
    return LocalizerNet(load_config(TINY).model).eval()


def entries(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.safetensors"))


def test_cached_taps_equal_the_backbone_and_are_read_back(tmp_path):
    model = tiny_model()
    cache = BackboneTapCache(model, tmp_path)
    sat, pano = torch.rand(3, 3, 64, 64), torch.rand(3, 3, 32, 64)
    first_sat, first_pano = cache.satellite_taps(sat), cache.ground_taps(pano)
    assert (cache.misses, cache.hits) == (6, 0) and len(entries(tmp_path)) == 6
    for cached, direct in zip(first_sat + first_pano, model.satellite_taps(sat) + model.ground_taps(pano)):
        assert cached.dtype == torch.float32 and cached.shape == direct.shape
        assert torch.equal(cached, direct.half().float())
    mixed = torch.cat([sat[1:2], torch.rand(1, 3, 64, 64)])           # one known tile, one new
    again = cache.satellite_taps(mixed)
    assert (cache.misses, cache.hits) == (7, 1)
    assert all(torch.equal(a[0], b[1]) for a, b in zip(again, first_sat))
    reopened = BackboneTapCache(tiny_model(), tmp_path)                # another process, same weights
    assert all(torch.equal(a, b) for a, b in zip(reopened.ground_taps(pano), first_pano)) and reopened.misses == 0


def test_key_changes_with_backbone_weights_and_image_kind(tmp_path):
    model = tiny_model()
    image = torch.rand(3, 32, 32)
    cache = BackboneTapCache(model, tmp_path)
    other = tiny_model(seed=1)
    assert BackboneTapCache(other, tmp_path).key("sat", image) != cache.key("sat", image)
    assert cache.key("pano", image) != cache.key("sat", image)
    assert cache.key("sat", image + 1e-3) != cache.key("sat", image)
    model.backbone.register_buffer("batches_seen", torch.tensor(3))   # 0-dim integer buffers (BatchNorm counters)
    counted = BackboneTapCache(model, tmp_path)
    model.backbone.batches_seen.fill_(4)
    assert BackboneTapCache(model, tmp_path).fingerprint != counted.fingerprint
    with torch.no_grad():
        next(model.backbone.parameters()).add_(1e-3)                  # retrained or replaced backbone
    changed = BackboneTapCache(model, tmp_path)
    changed.satellite_taps(image[None].expand(1, 3, 32, 32).clone())
    assert changed.misses == 1 and changed.key("sat", image) != cache.key("sat", image)


def test_damaged_entry_is_recomputed_and_trainable_backbone_refused(tmp_path):
    model = tiny_model()
    cache = BackboneTapCache(model, tmp_path)
    sat = torch.rand(1, 3, 64, 64)
    good = cache.satellite_taps(sat)
    (entry,) = entries(tmp_path)
    entry.write_bytes(b"not a safetensors file")
    repaired = cache.satellite_taps(sat)
    assert cache.misses == 2 and all(torch.equal(a, b) for a, b in zip(good, repaired))
    config = load_config(TINY, ["model.freeze_backbone=false"])
    with pytest.raises(ValueError, match="freeze_backbone"):
        BackboneTapCache(LocalizerNet(config.model), tmp_path / "x")


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vigor_cache") / "root"
    load_fake_vigor_writer()(root)
    return root


def test_weak_step_with_cache_matches_the_uncached_step(fake_root, tmp_path):
    overrides = [*fixture_overrides(fake_root), f"train.feature_cache_dir={tmp_path / 'cache'}"]
    plain_config = load_config(TINY, overrides)
    cached_config = load_config(TINY, [*overrides, "train.feature_cache=true"])
    train, val = engine_data.build_datasets(plain_config, DistContext())
    batch = next(iter(engine_data.build_train_loader(train, plain_config, DistContext())))
    torch.manual_seed(0)
    plain = WeakTask(plain_config, DistContext())
    torch.manual_seed(0)
    cached = WeakTask(cached_config, DistContext())
    assert cached.cache is not None and plain.cache is None
    for _ in range(2):                                                # a miss, then a hit: same loss
        assert cached.train_step(batch)["total"].item() == pytest.approx(plain.train_step(batch)["total"].item(), abs=1e-3)
    assert cached.cache.hits == cached.cache.misses == 2 * len(batch["pano"])
    loader = engine_data.build_val_loader(val, plain_config, DistContext())
    with torch.no_grad():
        assert cached.validate(loader)["mean_m"] == pytest.approx(plain.validate(loader)["mean_m"], abs=0.05)


def test_training_with_cache_fills_it_under_the_data_root(fake_root, tmp_path):
    run_dir = tmp_path / "run"
    code = main(["train", "--config", str(TINY), "--run-dir", str(run_dir), *fixture_overrides(fake_root),
                 "train.feature_cache=true", "train.epochs=2"])
    assert code == 0
    images = {p.name for p in entries(fake_root / ".feature_cache")}
    split = read_events(run_dir / "events.jsonl")
    assert len(images) > 0 and all(e["loss/total"] > 0 for e in split if e["event"] == "step")
    n_train, n_val = (len(ds) for ds in engine_data.build_datasets(load_config(TINY, fixture_overrides(fake_root)),
                                                                      DistContext()))
    assert len(images) <= 2 * (n_train + n_val)                       # at most one entry per image, not per step


def test_neighbourhoods_group_by_positive_tile_square(fake_root):
    train, _ = engine_data.build_datasets(load_config(TINY, fixture_overrides(fake_root)), DistContext())
    cities = {record.city for record in train.records}
    assert len(set(engine_data.neighbourhoods(train, 1e7))) == len(cities)          # one square per city
    tiles = {(record.city, record.sat_names[0]) for record in train.records}
    assert len(set(engine_data.neighbourhoods(train, 1.0))) == len(tiles)           # one per positive tile
    config = load_config(TINY, [*fixture_overrides(fake_root), "train.neighbour_batch=2", "train.neighbourhood_m=1e7"])
    loader = engine_data.build_train_loader(train, config, DistContext())
    sampler = loader.batch_sampler.batch_sampler
    assert sampler.group_size == 2 and sampler.groups == engine_data.neighbourhoods(train, 1e7)


def test_cache_refuses_heading_noise(fake_root):
    from geodistill.config import ConfigError

    config = load_config(TINY, [*fixture_overrides(fake_root), "train.feature_cache=true", "data.heading_noise_deg=10"])
    with pytest.raises(ConfigError, match="heading_noise_deg"):
        WeakTask(config, DistContext())

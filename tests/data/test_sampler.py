"""The no-shared-tile batch sampler: no shared tile, retries, equal counts per rank, determinism, exact resume."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from geodistill.data.sampler import NoSharedTileBatchSampler
from geodistill.data.vigor import VigorDataset


def grid_tile_sets(count: int, seed: int = 0, grid: int = 6) -> list[tuple[str, ...]]:
    """VIGOR-like: each item is covered by a 2x2 block of tiles on a small grid, so neighbours share tiles."""
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(count):
        i, j = rng.integers(0, grid - 1, size=2)
        sets.append(tuple(f"t{i + a}_{j + b}" for a in (0, 1) for b in (0, 1)))
    return sets


def batches_of(sampler) -> list[list[int]]:
    return [list(batch) for batch in sampler]


def test_no_batch_holds_a_shared_tile_and_batches_are_full():
    tile_sets = grid_tile_sets(200)
    sampler = NoSharedTileBatchSampler(tile_sets, batch_size=4, seed=1)
    batches = batches_of(sampler)
    assert len(batches) == len(sampler) > 0
    seen = [index for batch in batches for index in batch]
    assert len(seen) == len(set(seen))
    for batch in batches:
        assert len(batch) == 4
        for first, second in itertools.combinations(batch, 2):
            assert not set(tile_sets[first]) & set(tile_sets[second])


def test_rejected_indices_are_retried_later():
    tile_sets = [(f"pair{i // 2}",) for i in range(20)]  # items 2k and 2k+1 share their only tile
    sampler = NoSharedTileBatchSampler(tile_sets, batch_size=4, seed=3)
    covered = {index for batch in sampler for index in batch}
    assert len(covered) >= 16  # all but at most one partial batch, although half the items clash with another


def test_impossible_batches_are_dropped():
    sampler = NoSharedTileBatchSampler([("same",)] * 10, batch_size=2, seed=0)
    assert len(sampler) == 0 and batches_of(sampler) == []


def shares_a_tile_across_ranks(per_rank: list[list[list[int]]], tile_sets) -> bool:
    """Whether the ranks' batches of some step hold one tile twice."""
    for step_batches in zip(*per_rank):
        names = [name for batch in step_batches for index in batch for name in tile_sets[index]]
        if len(names) != len(set(names)):
            return True
    return False


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("across_ranks", [False, True])
def test_ranks_get_equal_counts_and_disjoint_batches(world_size, across_ranks):
    tile_sets = grid_tile_sets(150, seed=4, grid=12)  # room for global batches of 4 x world_size
    samplers = [NoSharedTileBatchSampler(tile_sets, 4, seed=9, rank=r, world_size=world_size, across_ranks=across_ranks)
                for r in range(world_size)]
    for sampler in samplers:
        sampler.set_epoch(2)
    per_rank = [batches_of(s) for s in samplers]
    assert len({len(batches) for batches in per_rank}) == 1 and len(per_rank[0]) > 0
    assert all(len(batch) == 4 for batches in per_rank for batch in batches)
    flat = [index for batches in per_rank for batch in batches for index in batch]
    assert len(flat) == len(set(flat))
    assert shares_a_tile_across_ranks(per_rank, tile_sets) is not across_ranks  # per-rank batches do share some


def test_order_is_seeded_and_changes_with_the_epoch():
    tile_sets = grid_tile_sets(120, seed=5)
    first, second = (NoSharedTileBatchSampler(tile_sets, 4, seed=11) for _ in range(2))
    assert batches_of(first) == batches_of(second)
    first.set_epoch(1)
    epoch_one = batches_of(first)
    assert epoch_one != batches_of(second)
    fresh = NoSharedTileBatchSampler(tile_sets, 4, seed=11)
    fresh.set_epoch(1)
    assert batches_of(fresh) == epoch_one  # nothing (retry list, position) carries over between epochs
    assert batches_of(NoSharedTileBatchSampler(tile_sets, 4, seed=12)) != batches_of(second)


def test_state_dict_resumes_exactly():
    tile_sets = grid_tile_sets(120, seed=6)
    reference = NoSharedTileBatchSampler(tile_sets, 4, seed=2)
    reference.set_epoch(3)
    expected = batches_of(reference)
    interrupted = NoSharedTileBatchSampler(tile_sets, 4, seed=2)
    interrupted.set_epoch(3)
    iterator = iter(interrupted)
    done = [next(iterator) for _ in range(5)]
    state = interrupted.state_dict()
    resumed = NoSharedTileBatchSampler(tile_sets, 4, seed=2)
    resumed.load_state_dict(state)
    resumed.set_epoch(3)  # a training loop calls this again at the resumed epoch
    assert done + batches_of(resumed) == expected
    prefetched = NoSharedTileBatchSampler(tile_sets, 4, seed=2)
    prefetched.load_state_dict(interrupted.state_dict(consumed_batches=2))
    assert batches_of(prefetched) == expected[2:]


def test_state_from_another_setup_is_refused():
    sampler = NoSharedTileBatchSampler(grid_tile_sets(40), 4, seed=2)
    with pytest.raises(ValueError, match="batch_size"):
        NoSharedTileBatchSampler(grid_tile_sets(40), 8, seed=2).load_state_dict(sampler.state_dict())
    with pytest.raises(ValueError, match="across_ranks"):
        NoSharedTileBatchSampler(grid_tile_sets(40), 4, seed=2, across_ranks=True).load_state_dict(sampler.state_dict())
    older = {key: value for key, value in sampler.state_dict().items() if key != "across_ranks"}
    NoSharedTileBatchSampler(grid_tile_sets(40), 4, seed=2).load_state_dict(older)  # saved before the option existed


def test_invalid_arguments():
    with pytest.raises(ValueError):
        NoSharedTileBatchSampler([("a",)], batch_size=0)
    with pytest.raises(ValueError):
        NoSharedTileBatchSampler([("a",)], batch_size=1, rank=2, world_size=2)


def test_semi_positives_of_one_panorama_never_share_a_batch(fake_vigor):
    dataset = VigorDataset(fake_vigor.root, "same", "all", pano_height=16, sat_size=32, include_semi_positives=True)
    # every 2x2 block of a 3x3 tile grid holds the centre tile, so one panorama per city fits a batch
    sampler = NoSharedTileBatchSampler(dataset.tile_sets(), batch_size=2, seed=0)
    batches = batches_of(sampler)
    assert len(batches) >= 2
    for batch in batches:
        names = [dataset.records[i].pano_name for i in batch]
        assert len(set(names)) == len(names)
        tiles = [tile for i in batch for tile in dataset.tile_names(i)]
        assert len(tiles) == len(set(tiles))


def test_grouped_order_draws_runs_of_one_group():
    import torch

    from geodistill.data.sampler import grouped_order

    groups = [index % 7 for index in range(70)]                        # 7 groups of 10
    order = grouped_order(groups, 4, torch.Generator().manual_seed(3))
    assert sorted(order) == list(range(70))
    runs, position = [], 0
    while position < len(order):                                       # cut the order where the group changes
        end = position
        while end < len(order) and groups[order[end]] == groups[order[position]]:
            end += 1
        runs.append(end - position)
        position = end
    assert sum(1 for length in runs if length >= 4) >= 12              # 7 groups x 2 full runs of 4 (some merge)
    assert order != grouped_order(groups, 4, torch.Generator().manual_seed(4))


def test_neighbour_batches_hold_several_panoramas_of_one_group_and_resume_checks_it():
    count = 96
    tile_sets = [(f"t{index}",) for index in range(count)]              # no clashes: grouping alone decides
    groups = [index // 8 for index in range(count)]                    # 12 neighbourhoods of 8
    sampler = NoSharedTileBatchSampler(tile_sets, batch_size=8, seed=0, groups=groups, group_size=4)
    batches = batches_of(sampler)
    assert len(batches) == 12 and sorted(i for b in batches for i in b) == list(range(count))
    for batch in batches:                                              # two runs of 4 from one group each
        assert sorted(np.unique([groups[i] for i in batch], return_counts=True)[1].tolist())[-1] >= 4
    plain = batches_of(NoSharedTileBatchSampler(tile_sets, batch_size=8, seed=0))
    assert max(np.unique([groups[i] for i in b], return_counts=True)[1].max() for b in plain) < 8
    with pytest.raises(ValueError, match="group_size"):
        NoSharedTileBatchSampler(tile_sets, batch_size=8, seed=0).load_state_dict(sampler.state_dict())
    with pytest.raises(ValueError, match="group key"):
        NoSharedTileBatchSampler(tile_sets, batch_size=8, group_size=2)

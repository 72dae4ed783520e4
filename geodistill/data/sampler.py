"""A batch sampler that never puts two panoramas sharing a satellite tile into one batch.

The weak matching loss treats the other items of a batch as negatives, so a tile shared by two panoramas would
turn a true match into a negative (``method.md`` §2.3). Under DDP with ``train.gather_negatives`` the batches of
all ranks at one step form one global batch (each rank's satellites are scored against every rank's panoramas), so
there the rule must hold for the global batch: it is drawn as a whole and split across the ranks
(``across_ranks=True``).

With ``groups`` and ``group_size`` > 1 the epoch's order is drawn in runs of up to ``group_size`` panoramas of one
group (for example one neighbourhood), so that most batches hold ``group_size`` panoramas from the same place:
their other-place negatives can no longer be told apart by place-wide cues alone (street style, palette). The
no-shared-tile rule still wins where two panoramas of a run share a tile.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence

import torch


def grouped_order(groups: Sequence[Hashable], group_size: int, generator: torch.Generator) -> list[int]:
    """A random order of ``range(len(groups))`` made of runs of up to ``group_size`` indices of one group.

    Each group is shuffled and cut into runs of ``group_size`` (its last run shorter), and the runs are shuffled.
    """
    members: dict[Hashable, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    runs: list[list[int]] = []
    for group_members in members.values():
        shuffled = [group_members[i] for i in torch.randperm(len(group_members), generator=generator).tolist()]
        runs += [shuffled[start:start + group_size] for start in range(0, len(shuffled), group_size)]
    return [index for r in torch.randperm(len(runs), generator=generator).tolist() for index in runs[r]]


def _build_batches(order: list[int], tile_sets: Sequence[frozenset], batch_size: int) -> list[list[int]]:
    """Greedy batching of ``order``: a clashing index goes to a retry list, tried first when a new batch starts."""
    batches: list[list[int]] = []
    retry: list[int] = []
    batch: list[int] = []
    used: set = set()

    def offer(index: int) -> bool:
        if tile_sets[index] & used:
            return False
        batch.append(index)
        used.update(tile_sets[index])
        return True

    def close_if_full() -> None:
        nonlocal batch, retry
        while len(batch) >= batch_size:
            batches.append(batch)
            batch = []
            used.clear()
            waiting, retry = retry, []
            for index in waiting:
                if len(batch) >= batch_size or not offer(index):
                    retry.append(index)

    for index in order:
        if not offer(index):
            retry.append(index)
        close_if_full()
    while retry:
        waiting, retry = retry, []
        for index in waiting:
            if len(batch) >= batch_size or not offer(index):
                retry.append(index)
        if len(batch) < batch_size:
            break
        close_if_full()
    return batches


class NoSharedTileBatchSampler(torch.utils.data.Sampler):
    """Yields lists of dataset indices, per rank, with no tile name shared inside a batch.

    Every rank builds the same list of batches from ``seed`` and the epoch. By default each batch holds
    ``batch_size`` indices and rank ``r`` takes every ``world_size``-th one, from the ``r``-th on. With
    ``across_ranks`` each batch is a global batch of ``batch_size · world_size`` indices and rank ``r`` takes its
    ``r``-th slice of ``batch_size``: the batches the ranks train on at one step then share no tile either (what
    gathered negatives need). Either way every rank gets the same count and the last partial batch is dropped.

    Args:
        tile_sets: for each dataset index, the names of its tiles (four for VIGOR).
        batch_size: panoramas per batch.
        seed: base seed; the epoch's order is drawn from ``seed + epoch``.
        rank: this process's rank.
        world_size: number of processes.
        across_ranks: no tile shared by the batches of all ranks at one step (the global batch).
        groups: for each dataset index, a group key (a neighbourhood); used when ``group_size`` > 1.
        group_size: panoramas of one group drawn together (1 = a plain random order).
    """

    def __init__(self, tile_sets: Sequence[Iterable[str]], batch_size: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1, across_ranks: bool = False, groups: Sequence[Hashable] | None = None,
                 group_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank {rank}, world_size {world_size}")
        self.tile_sets = [frozenset(names) for names in tile_sets]
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.across_ranks = across_ranks
        if group_size < 1:
            raise ValueError(f"group_size must be at least 1, got {group_size}")
        if group_size > 1 and (groups is None or len(groups) != len(self.tile_sets)):
            raise ValueError("group_size > 1 needs one group key per dataset index")
        self.groups, self.group_size = (list(groups) if group_size > 1 else None), group_size
        self.epoch = 0
        self.position = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's order; a resumed position is kept when the epoch is the one restored."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.position = 0

    def _rank_batches(self) -> list[list[int]]:
        if self._cache is None or self._cache[0] != self.epoch:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            if self.groups is None:
                order = torch.randperm(len(self.tile_sets), generator=generator).tolist()
            else:
                order = grouped_order(self.groups, self.group_size, generator)
            if self.across_ranks:
                global_batches = _build_batches(order, self.tile_sets, self.batch_size * self.world_size)
                start = self.rank * self.batch_size
                rank_batches = [batch[start:start + self.batch_size] for batch in global_batches]
            else:
                batches = _build_batches(order, self.tile_sets, self.batch_size)
                rank_batches = batches[self.rank::self.world_size][:len(batches) // self.world_size]
            self._cache = (self.epoch, rank_batches)
        return self._cache[1]

    def __len__(self) -> int:
        return len(self._rank_batches())

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._rank_batches()
        while self.position < len(batches):
            batch = batches[self.position]
            self.position += 1
            yield list(batch)
        self.position = 0

    def state_dict(self, consumed_batches: int | None = None) -> dict:
        """Epoch and position for an exact resume.

        Args:
            consumed_batches: batches of this epoch the caller has actually used; give it when a DataLoader
                prefetches ahead of the training loop (the sampler's own count then runs ahead).
        """
        position = self.position if consumed_batches is None else int(consumed_batches)
        return {"epoch": self.epoch, "position": position, "seed": self.seed, "batch_size": self.batch_size,
                "world_size": self.world_size, "across_ranks": self.across_ranks, "num_indices": len(self.tile_sets),
                "group_size": self.group_size}

    def load_state_dict(self, state: dict) -> None:
        """Resume at ``state``'s epoch and position; refuses a state from another dataset size or batching."""
        expected = {"seed": self.seed, "batch_size": self.batch_size, "world_size": self.world_size,
                    "across_ranks": self.across_ranks, "num_indices": len(self.tile_sets), "group_size": self.group_size}
        saved = {"across_ranks": False, "group_size": 1, **state}  # states written before these existed
        changed = {k: (saved.get(k), v) for k, v in expected.items() if saved.get(k) != v}
        if changed:
            raise ValueError(f"sampler state does not match this sampler (saved, current): {changed}")
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])

"""Datasets and loaders of a training run, built from :class:`~geodistill.config.DataConfig`.

- Train and validation splits are :class:`~geodistill.data.vigor.VigorDataset` ``split="train"`` and
  ``"val"`` (the seeded 80/20 split of VIGOR's training list); ``train.val_limit`` keeps the first N
  validation samples.
- Training batches come from :class:`~geodistill.data.sampler.NoSharedTileBatchSampler` (no two panoramas of
  a batch share any of their four tiles, because the weak loss treats the other batch items as negatives),
  one sampler per rank with equal batch counts on all ranks; ``train.batch_size`` is per rank. With
  ``train.neighbour_batch`` > 1 the batches are drawn in runs of that many panoramas of one neighbourhood
  (positive tiles in one ``train.neighbourhood_m`` square of a city), so in-batch negatives share a place.
- A dataset root that does not exist is generated first when ``data.synthetic.generate`` is true (rank 0
  generates, the others wait).
- Random per-sample augmentation (``data.heading_noise_deg``, ``data.photometric_copies``) is re-seeded
  from (seed, epoch, sample index), so it does not depend on worker processes and repeats exactly after a resume.
"""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from geodistill import keys, settings
from geodistill.config import ExperimentConfig
from geodistill.data.collate import collate_samples
from geodistill.data.sampler import NoSharedTileBatchSampler
from geodistill.data.synthetic import generate_dataset
from geodistill.data.transforms import Compose, PhotometricCopies, RandomHeading, reseed_transform
from geodistill.data.vigor import VigorDataset, parse_sat_name
from geodistill.engine.distributed import DistContext, barrier
from geodistill.geometry.frames import EARTH_RADIUS_M
from geodistill.errors import DataError

logger = logging.getLogger("geodistill.engine.data")

METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180.0  # of latitude (and of longitude at the equator)


def resolve_data_root(config: ExperimentConfig) -> Path:
    """``data.root`` as a path (relative roots live under ``settings.data_dir()``)."""
    root = settings.resolve_path(config.data.root, settings.data_dir())
    if root is None:
        raise DataError("data.root is empty; set it to a VIGOR-layout folder (data.root=PATH)")
    return root


def ensure_dataset(config: ExperimentConfig, ctx: DistContext) -> Path:
    """The data root, generated first when it is missing and ``data.synthetic.generate`` is on."""
    root = resolve_data_root(config)
    if not root.exists():
        synth = config.data.synthetic
        if not synth.generate:
            raise DataError(
                f"{root}: dataset root not found. Point data.root at a VIGOR-layout folder, generate one with "
                "'python -m geodistill synth', or set data.synthetic.generate=true"
            )
        if ctx.is_main:
            logger.info("generating a synthetic dataset at %s (%d panoramas per city)", root, synth.panos_per_city)
            generate_dataset(
                root,
                panos_per_city=synth.panos_per_city,
                seed=synth.seed,
                pano_size=(synth.pano_width, synth.pano_width // 2),
                tier=synth.tier,
                workers=synth.workers,
            )
        barrier(ctx)
    return root


class SeededTransform:
    """Wraps a random transform whose generators are re-seeded from (seed, epoch, sample index) per sample."""

    def __init__(self, transform, seed: int):
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def __call__(self, sample: dict) -> dict:
        index = int(sample[keys.INDEX])
        reseed_transform(self.transform, (self.seed * 1_000_003 + self.epoch * 10_007 + index) % (2**62))
        return self.transform(sample)


def build_datasets(config: ExperimentConfig, ctx: DistContext) -> tuple[Dataset, Dataset]:
    """(train, val) localisation datasets; the train set carries the heading perturbation if asked."""
    root = ensure_dataset(config, ctx)
    data = config.data
    parts = []
    if data.heading_noise_deg > 0:
        parts.append(RandomHeading(data.heading_noise_deg))
    if data.photometric_copies > 0:
        parts.append(PhotometricCopies(data.photometric_copies, config.train.seed))
    transform = SeededTransform(Compose(parts), config.train.seed) if parts else None
    common = dict(
        area=data.area,
        pano_height=data.pano_height,
        sat_size=data.sat_size,
        val_fraction=data.val_fraction,
        split_seed=data.split_seed,
        skip_bad_images=data.skip_bad_images,
        default_camera_height_m=config.model.camera_height_m,  # when a panorama has no sidecar height
    )
    train = VigorDataset(root, split="train", include_semi_positives=data.include_semi_positives,
                         transform=transform, **common)
    val = VigorDataset(root, split="val", **common)
    if config.train.val_limit > 0 and len(val) > config.train.val_limit:
        val = Subset(val, range(config.train.val_limit))
    return train, val


def _tile_sets(dataset: Dataset) -> list:
    if hasattr(dataset, "tile_names"):
        return [tuple(dataset.tile_names(i)) for i in range(len(dataset))]
    # a dataset without tiles: every sample is its own tile, so the sampler only shuffles and batches
    return [(f"sample-{i}",) for i in range(len(dataset))]


def neighbourhoods(dataset: Dataset, cell_m: float) -> list[tuple]:
    """(city, row, col) of the ``cell_m`` square holding each sample's positive tile centre."""
    squares = []
    for record in dataset.records:
        lat, lon = parse_sat_name(record.sat_names[0])
        north = lat * METRES_PER_DEGREE
        east = lon * METRES_PER_DEGREE * math.cos(math.radians(lat))
        squares.append((record.city, math.floor(north / cell_m), math.floor(east / cell_m)))
    return squares


class EpochBatches(torch.utils.data.Sampler):
    """A batch sampler over one epoch of an inner batch sampler: caps the batch count
    (``train.max_steps_per_epoch``) and skips the batches a resumed epoch has already done."""

    def __init__(self, batch_sampler, max_batches: int = 0):
        self.batch_sampler = batch_sampler
        self.max_batches = max_batches
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.batch_sampler.set_epoch(epoch)
        self.skip = skip

    def batches_per_epoch(self) -> int:
        """Batches of the epoch last set (the no-shared-tile packing may vary a little between epochs)."""
        total = len(self.batch_sampler)
        return min(total, self.max_batches) if self.max_batches > 0 else total

    def epoch_lengths(self, epochs: int) -> list[int]:
        """Batches of each of ``epochs`` epochs (visits every epoch's batching; leaves epoch 0 set)."""
        lengths = []
        for epoch in range(epochs):
            self.batch_sampler.set_epoch(epoch)
            lengths.append(self.batches_per_epoch())
        self.batch_sampler.set_epoch(0)
        return lengths

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch() - self.skip)

    def __iter__(self):
        return itertools.islice(iter(self.batch_sampler), self.skip, self.batches_per_epoch())


def build_train_loader(dataset: Dataset, config: ExperimentConfig, ctx: DistContext) -> DataLoader:
    """The training loader of this rank; its ``batch_sampler`` is an :class:`EpochBatches`."""
    sampler = NoSharedTileBatchSampler(
        _tile_sets(dataset), config.train.batch_size, seed=config.train.seed, rank=ctx.rank, world_size=ctx.world_size,
        across_ranks=config.train.gather_negatives,  # gathered negatives: no tile shared by the ranks' batches either
        groups=neighbourhoods(dataset, config.train.neighbourhood_m) if config.train.neighbour_batch > 1 else None,
        group_size=config.train.neighbour_batch,
    )
    batches = EpochBatches(sampler, config.train.max_steps_per_epoch)
    if min(batches.epoch_lengths(max(config.train.epochs, 1))) == 0:
        raise DataError(
            f"the training split ({len(dataset)} panoramas) does not fill one batch of {config.train.batch_size} "
            f"panoramas that share no satellite tile, per rank on {ctx.world_size} rank(s)"
            f"{' (all ranks together, with train.gather_negatives)' if sampler.across_ranks else ''}; use a smaller "
            "train.batch_size or more data"
        )
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=config.data.num_workers,
        collate_fn=collate_samples,
        pin_memory=ctx.device.type == "cuda",
        # the loader draws its workers' base seed from here, not from the global RNG a resume restores
        generator=torch.Generator().manual_seed(config.train.seed + ctx.rank),
    )


def build_val_loader(dataset: Dataset, config: ExperimentConfig, ctx: DistContext) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=config.train.batch_size,
        shuffle=False,
        num_workers=config.data.num_workers,
        collate_fn=collate_samples,
        pin_memory=ctx.device.type == "cuda",
    )


def set_loader_epoch(loader: DataLoader, epoch: int, skip: int = 0) -> None:
    """Prepare the train loader for ``epoch``, skipping its first ``skip`` batches (resume)."""
    loader.batch_sampler.set_epoch(epoch, skip)
    dataset = loader.dataset.dataset if isinstance(loader.dataset, Subset) else loader.dataset
    transform = getattr(dataset, "transform", None)
    if isinstance(transform, SeededTransform):
        transform.epoch = epoch

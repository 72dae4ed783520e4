"""Sample transforms driven by an explicit ``torch.Generator``: limited field of view, heading changes and
photometric copies.

Each transform takes a sample dict (``keys.py``) and returns a new one; inputs are not modified. Apply
:class:`RandomHeading` before a FoV transform: a FoV centre is relative to the panorama centre line.

With DataLoader workers, every worker gets a copy of the generator in the same state; call
:func:`reseed_transform` from a ``worker_init_fn`` so workers draw different values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from geodistill import keys
from geodistill.geometry.fov import fov_column_mask, sample_fov
from geodistill.geometry.panorama import roll_panorama


def _default_generator(generator: torch.Generator | None) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(0)


def apply_column_mask(sample: dict, column_mask: torch.Tensor) -> dict:
    """Zero the hidden panorama columns and narrow ``fov_mask`` to ``column_mask`` (W,) bool."""
    out = dict(sample)
    mask = column_mask.to(torch.bool) & sample[keys.FOV_MASK]
    out[keys.PANO] = sample[keys.PANO] * mask.to(sample[keys.PANO].dtype)  # 3,H,W * W
    out[keys.FOV_MASK] = mask
    return out


class FixedFov:
    """Keep a fixed window of ``fov_deg`` centred ``center_deg`` clockwise from the panorama centre line."""

    def __init__(self, fov_deg: float, center_deg: float = 0.0):
        if not 0.0 < fov_deg <= 360.0:
            raise ValueError(f"fov_deg must be in (0, 360], got {fov_deg}")
        self.fov_deg, self.center_deg = float(fov_deg), float(center_deg)

    def __call__(self, sample: dict) -> dict:
        width = sample[keys.PANO].shape[-1]
        return apply_column_mask(sample, fov_column_mask(width, self.fov_deg, self.center_deg))


class RandomFov:
    """Keep a random window: width in [min_deg, max_deg], centre drawn by ``sampler`` ('uniform' | 'faithful')."""

    def __init__(self, min_deg: float, max_deg: float, sampler: str = "uniform", generator: torch.Generator | None = None):
        if not 0.0 < min_deg <= max_deg <= 360.0:
            raise ValueError(f"need 0 < min_deg <= max_deg <= 360, got {min_deg}, {max_deg}")
        self.min_deg, self.max_deg, self.sampler = float(min_deg), float(max_deg), sampler
        self.generator = _default_generator(generator)

    def __call__(self, sample: dict) -> dict:
        fov_deg, center_deg = sample_fov(1, self.generator, self.min_deg, self.max_deg, self.sampler)
        width = sample[keys.PANO].shape[-1]
        return apply_column_mask(sample, fov_column_mask(width, fov_deg[0], center_deg[0]))


class RandomHeading:
    """Turn the camera clockwise by a uniform angle in [-max_deg, max_deg] and update ``heading_gt``.

    ``roll_panorama(pano, delta)`` is the view after a clockwise turn by ``delta``, so the heading of the
    centre line grows by ``delta``. ``max_deg`` of 180 or more gives a uniform heading on the circle.
    """

    def __init__(self, max_deg: float, generator: torch.Generator | None = None):
        if max_deg < 0:
            raise ValueError(f"max_deg must be non-negative, got {max_deg}")
        self.max_deg = float(max_deg)
        self.generator = _default_generator(generator)

    def draw(self) -> float:
        unit = float(torch.rand(1, generator=self.generator, dtype=torch.float64))
        if self.max_deg >= 180.0:
            return unit * 360.0 - 180.0
        return (2.0 * unit - 1.0) * self.max_deg

    def __call__(self, sample: dict) -> dict:
        return rotate_sample(sample, self.draw())


def rotate_sample(sample: dict, delta_deg: float) -> dict:
    """The sample after the camera turns clockwise by ``delta_deg``: rolled panorama, mask and heading."""
    out = dict(sample)
    out[keys.PANO] = roll_panorama(sample[keys.PANO], delta_deg)
    mask = sample[keys.FOV_MASK]
    if not bool(mask.all()):
        rolled = roll_panorama(mask.to(torch.float32).view(1, 1, -1), delta_deg).view(-1)
        out[keys.FOV_MASK] = rolled > 0.5
        out[keys.PANO] = out[keys.PANO] * out[keys.FOV_MASK].to(out[keys.PANO].dtype)
    heading = float(sample[keys.HEADING_GT]) + delta_deg
    out[keys.HEADING_GT] = torch.tensor(heading % 360.0, dtype=torch.float32)
    return out


def jitter_colours(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A (3,H,W) image in [0, 1] with drawn brightness, contrast, saturation, per-channel gain and gamma."""
    def uniform(low: float, high: float, size: int = 1) -> torch.Tensor:
        return low + (high - low) * torch.rand(size, generator=generator, dtype=torch.float64).to(image.dtype)

    grey = image.mean(dim=0, keepdim=True)
    image = grey + (image - grey) * uniform(0.6, 1.4)                               # saturation
    image = image.mean() + (image - image.mean()) * uniform(0.7, 1.3)                # contrast
    image = image * uniform(0.7, 1.3) * uniform(0.9, 1.1, 3).view(3, 1, 1)           # brightness, colour cast
    return image.clamp(0.0, 1.0) ** uniform(0.8, 1.25)                               # gamma


class PhotometricCopies:
    """Show each sample as one of ``copies`` fixed colour-jittered copies of its panorama and tile.

    The copy is drawn from ``generator`` (re-seeded per epoch and sample by the training data); copy ``c`` of
    sample ``index`` is always the same pair of images (both views jittered independently, seeded by ``seed``,
    ``index`` and ``c``), so a cache of backbone features keyed by image content holds ``copies`` entries per
    image and is hit from then on. Hidden panorama columns stay black.
    """

    def __init__(self, copies: int, seed: int, generator: torch.Generator | None = None):
        if copies < 1:
            raise ValueError(f"copies must be at least 1, got {copies}")
        self.copies, self.seed = int(copies), int(seed)
        self.generator = _default_generator(generator)

    def __call__(self, sample: dict) -> dict:
        copy = int(torch.randint(self.copies, (1,), generator=self.generator))
        fixed = torch.Generator().manual_seed((self.seed * 1_000_003 + int(sample[keys.INDEX]) * 101 + copy) % 2**62)
        out = dict(sample)
        out[keys.PANO] = jitter_colours(sample[keys.PANO], fixed) * sample[keys.FOV_MASK].to(sample[keys.PANO].dtype)
        out[keys.SAT] = jitter_colours(sample[keys.SAT], fixed)
        return out


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[dict], dict]]):
        self.transforms = list(transforms)

    def __call__(self, sample: dict) -> dict:
        for transform in self.transforms:
            sample = transform(sample)
        return sample


def reseed_transform(transform, seed: int) -> None:
    """Re-seed every generator inside ``transform`` (a transform or a :class:`Compose`), each differently."""
    parts = transform.transforms if isinstance(transform, Compose) else [transform]
    for offset, part in enumerate(parts):
        if isinstance(part, Compose):
            reseed_transform(part, seed + 1009 * (offset + 1))
        elif getattr(part, "generator", None) is not None:
            part.generator.manual_seed(seed + offset)

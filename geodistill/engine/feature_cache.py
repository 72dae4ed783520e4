"""A disk cache of frozen-backbone taps, so that a training step with a frozen backbone costs the decoders only.

With ``model.freeze_backbone`` the backbone's taps of an image never change during a run, and they dominate
the cost of a weak-training step on the CPU. :class:`BackboneTapCache` stores them on disk, content-addressed:
the file name of one image's taps is the SHA-256 of

- the backbone fingerprint: every tensor of the backbone's state dict (names, shapes, dtypes and bytes), the
  backbone name, the input normalisation and the panorama input mode (what turns an image into taps), and the
  cache format version;
- which input it is (satellite tile or panorama) and, for a panorama of the CCVPE base, how that base reads it
  (circular padding and the one tap it keeps: :func:`ground_kind`), the image's shape and its float32 bytes as fed.

So a changed backbone, input size, normalisation or image (another render, a resize, an augmented copy) is a
different key and can never read stale taps; augmented copies simply add entries (a recipe that augments
should draw a few fixed copies per image, so that they are hit again). Taps are stored in float16 and always
returned from their float16 values, computed or read, so a run sees the same numbers in its first epoch as in
later ones and after a resume. Files are written atomically (a temporary file, then a rename), so a stopped
run never leaves a truncated entry, and ranks writing the same entry write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from geodistill import settings
from geodistill.config import ConfigError
from geodistill.models.image_inputs import BackboneInputs

logger = logging.getLogger("geodistill.engine.feature_cache")

CACHE_FORMAT = 1
STORED_DTYPE = torch.float16


def backbone_fingerprint(model: BackboneInputs) -> str:
    """SHA-256 of what maps an image to taps: the backbone's weights and buffers and the input settings."""
    config = model.config
    digest = hashlib.sha256()
    settings = {"format": CACHE_FORMAT, "backbone": config.backbone, "normalization": config.normalization,
                "pano_input": config.pano_input}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for name, tensor in sorted(model.backbone.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def tap_cache_for(config, model: BackboneInputs, data_root: Path) -> "BackboneTapCache | None":
    """The cache a task uses under ``train.feature_cache`` (None when off): ``train.feature_cache_dir``, or
    ``<data root>/.feature_cache``. Refuses ``data.heading_noise_deg``, which turns every panorama anew each epoch
    so that its cached taps would never be read again."""
    if not config.train.feature_cache:
        return None
    if config.data.heading_noise_deg > 0:
        raise ConfigError("train.feature_cache: data.heading_noise_deg turns every panorama anew each epoch, "
                          "so its cached features would never be read again; use one or the other")
    folder = settings.resolve_path(config.train.feature_cache_dir, settings.data_dir())
    return BackboneTapCache(model, folder or data_root / ".feature_cache")


def ground_kind(model: BackboneInputs) -> str:
    """The entry kind of a panorama's taps: ``pano`` for the G2SWeakly base; the CCVPE base's ground taps come
    from a circularly padded panorama at ``ccvpe.ground_stride`` only, so they get a kind of their own."""
    config = model.config
    if config.architecture != "ccvpe":
        return "pano"
    return f"pano-ccvpe:{config.ccvpe.ground_stride}:{config.ccvpe.ground_wrap!r}"


class BackboneTapCache:
    """Backbone taps of satellite tiles and panoramas, read from ``folder`` or computed and stored there.

    Args:
        model: the network whose (frozen) backbone makes the taps; its ``satellite_taps``/``ground_taps`` are used.
        folder: cache folder (created if missing); entries live in ``folder/<2 hex>/<sha256>.safetensors``.

    Attributes ``hits`` and ``misses`` count images served from disk and computed.
    """

    def __init__(self, model: BackboneInputs, folder: str | Path):
        if not model.freeze_backbone:
            raise ValueError("the backbone feature cache needs a frozen backbone (model.freeze_backbone=true): "
                             "a trained backbone's taps change every step")
        self.model = model
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fingerprint = backbone_fingerprint(model)
        self.ground_kind = ground_kind(model)
        self.hits = 0
        self.misses = 0

    def satellite_taps(self, sat: torch.Tensor) -> list[torch.Tensor]:
        """Taps of (B,3,S,S) tiles in [0, 1], as :meth:`BackboneInputs.satellite_taps` (float16-rounded)."""
        return self._taps("sat", sat, self.model.satellite_taps)

    def ground_taps(self, pano: torch.Tensor) -> list[torch.Tensor]:
        """Taps of full (B,3,Hp,Wp) panoramas in [0, 1], as :meth:`LocalizerNet.ground_taps` without a mask."""
        return self._taps(self.ground_kind, pano, self.model.ground_taps)

    def key(self, kind: str, image: torch.Tensor) -> str:
        """The entry name of one (3,H,W) image of ``kind`` (``"sat"`` or :func:`ground_kind`)."""
        pixels = image.detach().to("cpu", torch.float32).contiguous()
        digest = hashlib.sha256(f"{self.fingerprint}:{kind}:{tuple(pixels.shape)}".encode())
        digest.update(pixels.numpy().tobytes())
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def _read(self, path: Path) -> list[torch.Tensor] | None:
        try:
            stored = load_file(str(path))
        except FileNotFoundError:
            return None
        except Exception as error:  # a damaged entry is recomputed, never trusted
            logger.warning("feature cache: unreadable entry %s (%s); recomputing it", path, error)
            return None
        return [stored[f"tap{i}"] for i in range(len(stored))]

    def _write(self, path: Path, taps: list[torch.Tensor]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        save_file({f"tap{i}": tap.contiguous() for i, tap in enumerate(taps)}, str(tmp))
        tmp.replace(path)

    def _taps(self, kind: str, images: torch.Tensor, compute) -> list[torch.Tensor]:
        device = images.device
        paths = [self._path(self.key(kind, image)) for image in images]
        per_image: list[list[torch.Tensor] | None] = [self._read(path) for path in paths]
        missing = [i for i, taps in enumerate(per_image) if taps is None]
        if missing:
            with torch.no_grad():
                computed = compute(images[missing])
            for row, i in enumerate(missing):
                taps = [tap[row].to("cpu", STORED_DTYPE) for tap in computed]
                self._write(paths[i], taps)
                per_image[i] = taps
        self.misses += len(missing)
        self.hits += len(images) - len(missing)
        return [torch.stack([taps[level] for taps in per_image]).to(device, torch.float32)
                for level in range(len(per_image[0]))]

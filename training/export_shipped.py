"""Export a run checkpoint as a shipped checkpoint: weights in fp16 (or fp32), no ``train_state.pt``.

    python training/export_shipped.py SOURCE DEST [--fp32]

``SOURCE`` is a checkpoint folder (``runs/NAME/best``, ``runs/NAME/best_teacher``) or a run folder (its
``best/``). The exported folder keeps the source's config, task, role, deploy network, epoch, step and
validation metrics, and records where it came from and the stored dtype. Floating-point tensors are rounded
to fp16; integer buffers (BatchNorm counters) stay as they are. Loading casts the weights back to the
network's fp32 parameters, so only the rounding differs; training/ship.sh evaluates the fp32 and the fp16
versions side by side to check that no reported metric moves by more than 0.05 m. Prints the sha256 of the
exported weights file.

A frozen backbone that is exactly the weights of its installed package (EfficientNet-Lite0, rounded the same way)
is not stored (``--keep-backbone`` stores it): ``config.json`` records the package and the sha256 of its weights
file, and loading takes the backbone from the package after checking that hash. A confidence calibration of the
source (``python -m geodistill calibrate``) is kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a source checkout works uninstalled

import torch

from geodistill.checkpoint import (  # noqa: E402
    PACKAGED_WEIGHTS, WEIGHTS_FILE, load_checkpoint, save_checkpoint, strip_packaged_backbone,
)
from geodistill.models.backbones import file_sha256 as sha256_of  # noqa: E402

META_KEYS = ("task", "role", "deploy", "metrics", "epoch", "step", "kind", "calibration")


def round_state_dicts(state_dicts: dict[str, dict[str, torch.Tensor]], dtype: torch.dtype) -> dict:
    """Every floating tensor cast to ``dtype`` (made contiguous); other tensors unchanged."""
    return {
        network: {name: (t.to(dtype) if t.is_floating_point() else t).contiguous() for name, t in state.items()}
        for network, state in state_dicts.items()
    }


def export(source: str | Path, dest: str | Path, fp16: bool = True, keep_backbone: bool = False) -> Path:
    """Write the shipped checkpoint ``dest`` from ``source``; returns the folder."""
    checkpoint = load_checkpoint(source)
    dtype = torch.float16 if fp16 else torch.float32
    meta = {key: checkpoint.meta[key] for key in META_KEYS if key in checkpoint.meta}
    meta["exported_from"] = str(checkpoint.meta.get("exported_from", checkpoint.path))
    meta["weights_dtype"] = str(dtype).replace("torch.", "")
    state_dicts = round_state_dicts(checkpoint.state_dicts, dtype)
    if not keep_backbone:
        state_dicts, packaged = strip_packaged_backbone(state_dicts, checkpoint.config)
        if packaged is not None:
            meta[PACKAGED_WEIGHTS] = packaged
    return save_checkpoint(dest, checkpoint.config, state_dicts, meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="run checkpoint folder or run folder (its best/)")
    parser.add_argument("dest", help="shipped checkpoint folder to write (replaced atomically)")
    parser.add_argument("--fp32", action="store_true", help="keep fp32 weights")
    parser.add_argument("--keep-backbone", action="store_true",
                        help="store the frozen backbone even when it equals its installed package's weights")
    args = parser.parse_args(argv)
    folder = export(args.source, args.dest, fp16=not args.fp32, keep_backbone=args.keep_backbone)
    weights = folder / WEIGHTS_FILE
    print(f"{sha256_of(weights)}  {weights}  ({weights.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

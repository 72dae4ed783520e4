"""Export a run checkpoint as a shipped checkpoint: weights in fp16 (or fp32), no ``train_state.pt``.

    python training/export_shipped.py SOURCE DEST [--fp32]

``SOURCE`` is a checkpoint folder (``runs/NAME/best``, ``runs/NAME/best_teacher``) or a run folder (its
``best/``). The exported folder keeps the source's config, task, role, deploy network, epoch, step and
validation metrics, and records where it came from and the stored dtype. Floating-point tensors are rounded
to fp16; integer buffers (BatchNorm counters) stay as they are. Loading casts the weights back to the
network's fp32 parameters, so only the rounding differs; training/ship.sh evaluates the fp32 and the fp16
versions side by side to check that no reported metric moves by more than 0.05 m. Prints the sha256 of the
exported weights file.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a source checkout works uninstalled

import torch

from geodistill.checkpoint import WEIGHTS_FILE, load_checkpoint, save_checkpoint  # noqa: E402

META_KEYS = ("task", "role", "deploy", "metrics", "epoch", "step", "kind")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def round_state_dicts(state_dicts: dict[str, dict[str, torch.Tensor]], dtype: torch.dtype) -> dict:
    """Every floating tensor cast to ``dtype`` (made contiguous); other tensors unchanged."""
    return {
        network: {name: (t.to(dtype) if t.is_floating_point() else t).contiguous() for name, t in state.items()}
        for network, state in state_dicts.items()
    }


def export(source: str | Path, dest: str | Path, fp16: bool = True) -> Path:
    """Write the shipped checkpoint ``dest`` from ``source``; returns the folder."""
    checkpoint = load_checkpoint(source)
    dtype = torch.float16 if fp16 else torch.float32
    meta = {key: checkpoint.meta[key] for key in META_KEYS if key in checkpoint.meta}
    meta["exported_from"] = str(checkpoint.path)
    meta["weights_dtype"] = str(dtype).replace("torch.", "")
    return save_checkpoint(dest, checkpoint.config, round_state_dicts(checkpoint.state_dicts, dtype), meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="run checkpoint folder or run folder (its best/)")
    parser.add_argument("dest", help="shipped checkpoint folder to write (replaced atomically)")
    parser.add_argument("--fp32", action="store_true", help="keep fp32 weights")
    args = parser.parse_args(argv)
    folder = export(args.source, args.dest, fp16=not args.fp32)
    weights = folder / WEIGHTS_FILE
    print(f"{sha256_of(weights)}  {weights}  ({weights.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

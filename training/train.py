"""Train from a recipe: a thin script over :func:`geodistill.engine.loop.train`.

    python training/train.py --config training/configs/tiny.yaml [--run-dir DIR] [--resume] [--force] [key=value ...]

Same arguments and behaviour as ``python -m geodistill train`` (which is what this calls).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geodistill.cli import main  # noqa: E402  (after the path set-up, so a source checkout works uninstalled)

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))

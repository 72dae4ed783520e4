"""Shrink documentation pictures in place: at most ``--width`` pixels wide, 256-colour palette PNG.

    python training/optimize_images.py docs/screenshots/*.png [--width 1100]

Screenshots of the app are flat colours and text, which a 256-colour palette (median cut, no dithering) keeps
readable at a fraction of the size of a 24-bit PNG. A file is rewritten only when the result is smaller, through a
temporary sibling and a rename. Prints each file's size before and after.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image


def optimized_png(image: Image.Image, width: int) -> bytes:
    """The PNG bytes of ``image`` scaled down to ``width`` (never up) and reduced to a 256-colour palette."""
    image = image.convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def optimize(path: Path, width: int) -> tuple[int, int]:
    """Rewrite ``path`` when the optimised PNG is smaller; returns (bytes before, bytes after)."""
    before = path.stat().st_size
    with Image.open(path) as image:
        data = optimized_png(image, width)
    if len(data) >= before:
        return before, before
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return before, len(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="PNG files to shrink in place")
    parser.add_argument("--width", type=int, default=1100, help="largest width kept, pixels (default 1100)")
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    for file in args.files:
        before, after = optimize(file, args.width)
        print(f"{file}: {before / 1024:.0f} KiB -> {after / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Draw the README's teaser (docs/teaser.png) from a bundled sample and the shipped default model.

    python training/make_teaser.py [--sample CITY/NAME] [--out docs/teaser.png]

Three panels, 512 px high: the north-up aerial tile with the true camera (red ring, heading arrow); the default
model's heatmap on the same tile with its prediction (red ring, its heading arrow) and the true position (green
dot); the street panorama taken there (centre column = the heading). The default model is
``geodistill.shipped.DEFAULT_LOCALIZER`` with the orientation model where it needs one
(``geodistill.studio.default_localizer``), given the full panorama. Run by ``training/refresh_assets.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a source checkout works uninstalled

from geodistill import keys  # noqa: E402
from geodistill.data.samples import list_samples, load_sample, samples_root  # noqa: E402
from geodistill.studio import default_localizer  # noqa: E402
from geodistill.viz.heatmap import draw_localization, heatmap_overlay  # noqa: E402
from geodistill.viz.images import resize_rgb, to_rgb_uint8  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# the README's predict example: a cross-area city, a place the shipped models never saw
DEFAULT_SAMPLE = "SanFrancisco/syn-SF-s7-w000-p02,37.68858729,-122.42010483"
SIDE = 512        # drawn height of every panel, pixels
GAP = 8           # white pixels between panels
CAPTION = 30      # caption strip above the panels


def _panorama(sample: dict) -> np.ndarray:
    """The sample's panorama file at 2·SIDE × SIDE (the loaded sample is decoded smaller)."""
    path = samples_root() / sample[keys.CITY] / "panorama" / sample[keys.PANO_NAME]
    with Image.open(path) as image:
        return resize_rgb(np.asarray(image.convert("RGB")), 2 * SIDE, SIDE)


def teaser(sample: dict, prediction, panorama: np.ndarray, model_name: str) -> np.ndarray:
    """The three captioned panels side by side, (CAPTION + SIDE, 4·SIDE + 2·GAP, 3) uint8."""
    tile = to_rgb_uint8(sample[keys.SAT])
    scale = SIDE / tile.shape[0]
    uv_gt = np.asarray(sample[keys.UV_GT], dtype=np.float64)
    heading_gt = float(sample[keys.HEADING_GT])
    truth = draw_localization(resize_rgb(tile, SIDE, SIDE), uv_pred=uv_gt, heading_deg=heading_gt, uv_scale=scale)
    heatmap = draw_localization(heatmap_overlay(sample[keys.SAT], prediction.prob_on_tile, opacity=0.8, size=SIDE),
                                uv_pred=prediction.uv, uv_gt=uv_gt, heading_deg=prediction.heading_deg,
                                uv_scale=scale)
    panels = [truth, heatmap, panorama]
    captions = ["aerial tile: the camera (red ring) and its heading",
                f"{model_name}: heatmap, {prediction.error_m:.1f} m off (truth green)",
                "the street panorama taken there (centre column = heading)"]
    width = sum(panel.shape[1] for panel in panels) + GAP * (len(panels) - 1)
    canvas = Image.new("RGB", (width, CAPTION + SIDE), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=17)
    left = 0
    for panel, caption in zip(panels, captions):
        canvas.paste(Image.fromarray(panel), (left, CAPTION))
        draw.text((left + 6, 6), caption, fill=(20, 20, 20), font=font)
        left += panel.shape[1] + GAP
    return np.asarray(canvas)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default=DEFAULT_SAMPLE, help=f"bundled sample (default {DEFAULT_SAMPLE})")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "teaser.png", help="PNG to write")
    args = parser.parse_args(argv)
    if args.sample not in list_samples():
        print(f"error: {args.sample}: no such bundled sample in {samples_root()}", file=sys.stderr)
        return 2
    sample = load_sample(args.sample)
    localizer = default_localizer()
    prediction = localizer.predict(sample, fov_deg=None)
    image = teaser(sample, prediction, _panorama(sample), Path(localizer.source).name)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    Image.fromarray(image).save(tmp, format="PNG", optimize=True)
    tmp.replace(args.out)
    print(f"wrote {args.out}: {args.sample}, {Path(localizer.source).name} error {prediction.error_m:.2f} m")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A generated test area for timing ``refine``: a UTM GeoTIFF orthophoto and geotagged 2048x1024 JPEG panoramas.

The pixels are smooth random texture (the timing does not depend on what they show); each panorama carries EXIF
GPS inside the orthophoto. ``bench_refine`` times :func:`geodistill.area.refine.refine_area` end to end on them.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from pyproj import Transformer
from rasterio.transform import from_origin

from geodistill.area.exif import save_jpeg_with_gps
from geodistill.area.local_frame import LocalFrame
from geodistill.area.refine import refine_area
from geodistill.inference import Localizer

BENCH_CENTRE = (47.6062, -122.3321)   # Seattle, UTM zone 10N
BENCH_CRS = "EPSG:32610"
BENCH_ORTHO_MPP = 0.2


def _texture(generator: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """(height, width, 3) uint8 smooth random texture (random colours upsampled bilinearly, plus fine noise)."""
    coarse = generator.integers(0, 256, (max(2, height // cell), max(2, width // cell), 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR), np.int16)
    noise = generator.integers(-12, 13, image.shape, dtype=np.int16)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def write_bench_area(folder: str | Path, panoramas: int, seed: int = 0, ortho_px: int = 1500,
                     pano_size: tuple[int, int] = (2048, 1024), spread_m: float = 80.0) -> tuple[Path, Path]:
    """Write ``folder/area.tif`` (``ortho_px`` square at 0.2 m/px in UTM) and ``folder/panos/*.jpg`` (EXIF GPS within
    ``spread_m`` of the centre). Returns (orthophoto path, panorama folder)."""
    folder = Path(folder)
    generator = np.random.default_rng(seed)
    x, y = Transformer.from_crs("EPSG:4326", BENCH_CRS, always_xy=True).transform(BENCH_CENTRE[1], BENCH_CENTRE[0])
    half = ortho_px / 2 * BENCH_ORTHO_MPP
    ortho = folder / "area.tif"
    folder.mkdir(parents=True, exist_ok=True)
    with rasterio.open(ortho, "w", driver="GTiff", width=ortho_px, height=ortho_px, count=3, dtype="uint8",
                       crs=BENCH_CRS, transform=from_origin(x - half, y + half, BENCH_ORTHO_MPP, BENCH_ORTHO_MPP),
                       tiled=True, blockxsize=256, blockysize=256, compress="deflate") as dataset:
        dataset.write(_texture(generator, ortho_px, ortho_px, 16).transpose(2, 0, 1))
    frame = LocalFrame(*BENCH_CENTRE)
    panos = folder / "panos"
    for index in range(panoramas):
        east, north = generator.uniform(-spread_m, spread_m, 2)
        lat, lon = frame.to_latlon(east, north)
        image = Image.fromarray(_texture(generator, pano_size[1], pano_size[0], 32))
        save_jpeg_with_gps(image, panos / f"pano_{index:04d}.jpg", float(lat), float(lon),
                           heading_deg=float(generator.uniform(0, 360)))
    return ortho, panos


def bench_refine(localizer: Localizer, panoramas: int = 32, batch_size: int = 8, seed: int = 0) -> dict:
    """Panoramas per second of ``refine_area`` end to end (priors, decoding, tiles, localization, writing) on a
    generated area, after a warm-up run on a few of them."""
    with tempfile.TemporaryDirectory(prefix="geodistill-bench-refine-") as temp:
        ortho, panos = write_bench_area(temp, panoramas, seed)
        warmup = Path(temp) / "warmup"
        warmup.mkdir()
        for path in sorted(panos.iterdir())[:batch_size]:
            (warmup / path.name).symlink_to(path)
        refine_area(ortho, warmup, Path(temp) / "warmup.geojson", localizer=localizer, batch_size=batch_size)
        start = time.perf_counter()
        summary = refine_area(ortho, panos, Path(temp) / "refined.geojson", localizer=localizer,
                              batch_size=batch_size)
        seconds = time.perf_counter() - start
    return {"panoramas": summary.refined, "seconds": seconds, "panoramas_per_s": summary.refined / seconds}

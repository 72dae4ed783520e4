"""Per-view environment (season, sun, weather, grading) and difficulty tiers."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

SEASONS = ("summer", "spring", "autumn", "winter")


@dataclass(frozen=True)
class Tier:
    """What differs between the aerial and the ground view, and how much the aerial is degraded."""

    name: str
    p_env_differs: float  # probability that the ground environment is drawn independently of the aerial one
    cars: bool  # transient cars (drawn per view)
    max_lean_deg: float  # aerial off-nadir lean
    resolution_loss: tuple[float, float]  # aerial down/up-sampling factor range
    jpeg_quality: tuple[int, int]  # aerial JPEG quality range
    jitter_deg: float  # panorama roll/pitch jitter
    misregistration_m: float  # aerial mis-registration
    p_construction: float  # per building: missing from one of the views
    asphalt_jitter: float  # per-view asphalt tone randomisation


TIERS = {
    "easy": Tier("easy", 0.0, False, 0.0, (1.0, 1.0), (90, 95), 0.0, 0.0, 0.0, 0.0),
    "medium": Tier("medium", 0.5, True, 3.0, (0.8, 1.0), (75, 92), 0.0, 0.25, 0.0, 0.5),
    "hard": Tier("hard", 0.7, True, 6.0, (0.6, 1.0), (60, 92), 1.5, 0.5, 0.03, 1.0),
}


def get_tier(name: str) -> Tier:
    """The tier called ``name``; a clear error for anything else."""
    if name not in TIERS:
        raise ValueError(f"unknown synthetic tier {name!r}; expected one of {tuple(TIERS)}")
    return TIERS[name]


@dataclass(frozen=True)
class Environment:
    """Everything about a view's capture conditions; stored in the label so a sample can be reproduced."""

    season: str
    sun_azimuth_deg: float  # clockwise from north
    sun_elevation_deg: float
    overcast: bool
    exposure: float
    tint: tuple[float, float, float]
    saturation: float
    snow: bool
    cloud_cover: float
    haze_m: float  # aerial-perspective haze distance
    asphalt_tone: tuple[float, float, float]
    sidewalk_tone: float = 1.0  # per-view brightness of sidewalks and plazas
    paint: float = 1.0  # per-view brightness of lane markings (wear, fresh paint)
    texture_offset: float = 0.0  # per-view shift of the asphalt and ground wear textures

    def to_dict(self) -> dict:
        return asdict(self)

    def sun_vector_xy(self) -> np.ndarray:
        """Unit vector towards the sun in the raster frame (x east, y south, z up), (3,)."""
        az, el = math.radians(self.sun_azimuth_deg), math.radians(self.sun_elevation_deg)
        return np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])

    def light(self) -> tuple[np.ndarray, np.ndarray]:
        """(sun irradiance rgb, sky ambient rgb), each (3,)."""
        if self.overcast:
            return np.array([0.18, 0.18, 0.18]), np.array([0.78, 0.80, 0.84])
        warm = max(0.0, 1.0 - self.sun_elevation_deg / 40.0)
        sun = np.array([0.95, 0.90 - 0.08 * warm, 0.82 - 0.18 * warm]) * 0.95
        return sun, np.array([0.40, 0.45, 0.55])


def draw_environment(rng: np.random.Generator, tier: Tier, season: str | None = None) -> Environment:
    """Draw a view's environment; ``season`` forces the season."""
    season = season or SEASONS[int(rng.integers(len(SEASONS)))]
    low = 15.0 if season == "winter" else 25.0
    high = 40.0 if season == "winter" else 68.0
    tone = math.exp(rng.uniform(math.log(1 - 0.25 * tier.asphalt_jitter), math.log(1 + 0.9 * tier.asphalt_jitter)))
    hue = rng.uniform(-0.04, 0.04, 3) * tier.asphalt_jitter
    return Environment(
        season=season,
        sun_azimuth_deg=float(rng.uniform(0, 360)),
        sun_elevation_deg=float(rng.uniform(low, high)),
        overcast=bool(rng.random() < 0.2),
        exposure=float(rng.uniform(0.88, 1.12)),
        tint=tuple(float(x) for x in rng.uniform(0.95, 1.05, 3)),
        saturation=float(rng.uniform(0.8, 1.15)),
        snow=bool(season == "winter" and rng.random() < 0.4),
        cloud_cover=float(rng.uniform(0.15, 0.7)),
        haze_m=float(rng.uniform(350, 900)),
        asphalt_tone=tuple(float(tone * (1 + h)) for h in hue),
        sidewalk_tone=float(rng.uniform(1 - 0.15 * tier.asphalt_jitter, 1 + 0.1 * tier.asphalt_jitter)),
        paint=float(rng.uniform(1 - 0.5 * tier.asphalt_jitter, 1.0)),
        texture_offset=float(rng.uniform(0, 50) * tier.asphalt_jitter),
    )


def grade(image: np.ndarray, env: Environment) -> np.ndarray:
    """Exposure, tint and saturation, in place on (H, W, 3) float32 in [0, 1]-ish."""
    gray = image.mean(axis=2, keepdims=True)
    image = gray + (image - gray) * env.saturation
    image *= np.asarray(env.tint, np.float32) * env.exposure
    return np.clip(image, 0.0, 1.0, out=image)

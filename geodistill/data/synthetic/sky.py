"""Sky: vertical gradient, fractal clouds on a plane 1.5 km up, sun glow, overcast variant."""

from __future__ import annotations

import math

import numpy as np

from geodistill.data.synthetic import noise

CLOUD_HEIGHT_M = 1500.0


def horizon_colour(env) -> np.ndarray:
    """Colour of the sky at the horizon, also the haze colour, (3,) float32."""
    if env.overcast:
        return np.array([0.74, 0.76, 0.78], np.float32)
    return np.array([0.76, 0.83, 0.90], np.float32)


def sky_colour(azimuth_rad: np.ndarray, elevation_rad: np.ndarray, env, cloud_offset: float) -> np.ndarray:
    """Sky radiance along view directions.

    Args:
        azimuth_rad: (N,) clockwise from north.
        elevation_rad: (N,) above the horizon (values below are clamped to it).
        env: the view's environment.
        cloud_offset: shifts the cloud field (per-view draw).

    Returns:
        (N, 3) float32.
    """
    el = np.clip(elevation_rad, 0.0, None).astype(np.float32)
    az = azimuth_rad.astype(np.float32)
    horizon = horizon_colour(env)
    if env.overcast:
        zenith = np.array([0.62, 0.64, 0.68], np.float32)
    else:
        zenith = np.array([0.22, 0.42, 0.78], np.float32)
    blend = np.sqrt(np.sin(el))[:, None]
    colour = horizon * (1 - blend) + zenith * blend
    # clouds: intersect the plane at CLOUD_HEIGHT_M, sample fractal noise there
    reach = CLOUD_HEIGHT_M / np.maximum(np.tan(el), 0.02)
    reach = np.minimum(reach, 40000.0)
    cx, cy = reach * np.sin(az), reach * np.cos(az)
    density = noise.sample(cx, cy, 9000.0, cloud_offset) * 0.7 + noise.sample(cx, cy, 2200.0, cloud_offset + 3) * 0.3
    cover = env.cloud_cover if not env.overcast else 0.9
    alpha = np.clip((density - (1.0 - cover) * 0.75 - 0.15) * 3.0, 0.0, 0.92)
    alpha *= np.clip(el / 0.05, 0.0, 1.0) * 0.8 + 0.2
    shade = 0.88 + 0.2 * noise.sample(cx, cy, 1200.0, cloud_offset + 7)
    cloud = np.array([0.93, 0.93, 0.95], np.float32)[None] * shade[:, None]
    colour = colour * (1 - alpha[:, None]) + cloud * alpha[:, None]
    if not env.overcast:
        sun_az, sun_el = math.radians(env.sun_azimuth_deg), math.radians(env.sun_elevation_deg)
        cos_gamma = (np.cos(el) * math.cos(sun_el) * np.cos(az - sun_az) + np.sin(el) * math.sin(sun_el))
        gamma = np.arccos(np.clip(cos_gamma, -1.0, 1.0))
        glow = 1.2 * np.exp(-gamma / 0.035) + 0.25 * np.exp(-gamma / 0.25)
        colour = colour + np.array([1.0, 0.96, 0.88], np.float32) * glow[:, None].astype(np.float32)
    return np.clip(colour, 0.0, 1.0).astype(np.float32)

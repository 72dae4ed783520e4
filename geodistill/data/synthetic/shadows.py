"""Cast shadows: a stamped ground-shadow raster per (world, sun) and point marching for raised surfaces."""

from __future__ import annotations

import math

import cv2
import numpy as np

from geodistill.data.synthetic.kinds import KIND_BUILDING, KIND_UNIT
from geodistill.data.synthetic.world import World

SHADOW_CELL_M = 0.125
_SHIFT = 3  # fixed-point bits of the cv2 drawing calls
MAX_SHADOW_M = 300.0


def _sun_uv(world: World, env):
    sun = env.sun_vector_xy()
    horizontal = math.hypot(sun[0], sun[1])
    su, sv = world.dir_xy_to_uv(sun[0] / horizontal, sun[1] / horizontal)
    return np.array([su, sv]), max(math.tan(math.radians(env.sun_elevation_deg)), 0.05)


def _to_px(world, u, v):
    scale = (1 << _SHIFT) / SHADOW_CELL_M
    return np.stack([(np.asarray(u) + world.size_m / 2) * scale - (1 << _SHIFT) / 2,
                     (np.asarray(v) + world.size_m / 2) * scale - (1 << _SHIFT) / 2], -1).round().astype(np.int32)


def _stamp_boxes(world, raster, indices, sun_uv, tan_el):
    b = world.boxes
    indices = np.asarray(indices, np.int64)
    if indices.size == 0:
        return
    length = np.minimum(b.h[indices] / tan_el, MAX_SHADOW_M)[:, None]
    cu = np.stack([b.u0[indices], b.u1[indices], b.u1[indices], b.u0[indices]], 1)
    cv = np.stack([b.v0[indices], b.v0[indices], b.v1[indices], b.v1[indices]], 1)
    base = _to_px(world, cu, cv)
    tip = _to_px(world, cu - sun_uv[0] * length, cv - sun_uv[1] * length)
    corners = np.concatenate([base, tip], 1)  # (M, 8, 2)
    for pts in corners:
        cv2.fillConvexPoly(raster, cv2.convexHull(pts), 255, cv2.LINE_AA, _SHIFT)


def _static_shadow(world: World, env, hidden: tuple) -> np.ndarray:
    key = ("shadow", round(env.sun_azimuth_deg, 6), round(env.sun_elevation_deg, 6), hidden, env.season)
    if key in world.cache:
        return world.cache[key]
    n = int(round(world.size_m / SHADOW_CELL_M))
    raster = np.zeros((n, n), np.uint8)
    sun_uv, tan_el = _sun_uv(world, env)
    b = world.boxes
    static = np.isin(b.kind, (KIND_BUILDING, KIND_UNIT)) & ~np.isin(b.owner, np.array(hidden, np.int64))
    static[0] = False
    _stamp_boxes(world, raster, np.nonzero(static)[0], sun_uv, tan_el)
    angle = math.degrees(math.atan2(sun_uv[1], sun_uv[0]))
    t = world.trees
    crown_value = 110 if env.season == "winter" else 225
    scale = (1 << _SHIFT) / SHADOW_CELL_M
    zc = t["base"] + t["semi_c"]
    centres = _to_px(world, t["u"] - sun_uv[0] * zc / tan_el, t["v"] - sun_uv[1] * zc / tan_el)
    bases = _to_px(world, t["u"], t["v"])
    along = (np.hypot(t["radius"], t["semi_c"] / tan_el) * scale).astype(int)
    across = (t["radius"] * scale).astype(int)
    widths = np.maximum(1, np.round(2 * t["trunk_r"] / SHADOW_CELL_M)).astype(int)
    for i in range(len(t["u"])):
        centre = (int(centres[i, 0]), int(centres[i, 1]))
        cv2.ellipse(raster, centre, (int(along[i]), int(across[i])), angle, 0, 360, crown_value, -1, cv2.LINE_AA,
                    _SHIFT)
        cv2.line(raster, (int(bases[i, 0]), int(bases[i, 1])), centre, 255, int(widths[i]), cv2.LINE_AA, _SHIFT)
    p = world.poles
    length = np.minimum(p["height"] / tan_el, MAX_SHADOW_M)
    bases = _to_px(world, p["u"], p["v"])
    tips = _to_px(world, p["u"] - sun_uv[0] * length, p["v"] - sun_uv[1] * length)
    for base, tip in zip(bases, tips):
        cv2.line(raster, (int(base[0]), int(base[1])), (int(tip[0]), int(tip[1])), 230, 1, cv2.LINE_AA, _SHIFT)
    world.cache[key] = raster
    return raster


def ground_shadow_raster(world: World, env, car_ids: np.ndarray, hidden_buildings=()) -> np.ndarray:
    """Ground shadow occupancy of one view, (n, n) uint8 at ``SHADOW_CELL_M`` in the street frame.

    The static part (buildings, trees, poles) is cached per world and sun; the view's cars are stamped
    on a copy.
    """
    static = _static_shadow(world, env, tuple(sorted(int(x) for x in hidden_buildings)))
    if len(car_ids) == 0:
        return static
    raster = static.copy()
    sun_uv, tan_el = _sun_uv(world, env)
    cars = world.cars
    _stamp_boxes(world, raster, np.concatenate([cars["body_box"][car_ids], cars["cabin_box"][car_ids]]),
                 sun_uv, tan_el)
    return raster


def sample_raster(world: World, raster: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a ``SHADOW_CELL_M`` street-frame raster, (N,) float32 in [0, 1]; 0 outside."""
    n = raster.shape[0]
    x = (np.asarray(u, np.float64) + world.size_m / 2) / SHADOW_CELL_M - 0.5
    y = (np.asarray(v, np.float64) + world.size_m / 2) / SHADOW_CELL_M - 0.5
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 < n - 1) & (y0 < n - 1)
    x0, y0 = np.where(inside, x0, 0), np.where(inside, y0, 0)
    flat = raster.ravel()
    i = y0 * n + x0
    top = flat[i] * (1 - fx) + flat[i + 1] * fx
    bottom = flat[i + n] * (1 - fx) + flat[i + n + 1] * fx
    value = (top * (1 - fy) + bottom * fy) / np.float32(255.0)
    return np.where(inside, value, np.float32(0.0)).astype(np.float32)


def point_shadow(world: World, height: np.ndarray, u, v, z, env, steps: int = 26) -> np.ndarray:
    """Whether raised points are shadowed by the heightfield, marching towards the sun.

    Args:
        world: the world (frame and cell).
        height: (n, n) view height raster.
        u, v, z: (N,) points in the street frame, metres.
        env: the view's environment (sun).
        steps: geometric marching steps from 0.3 m out to the longest possible shadow.

    Returns:
        (N,) float32, 1 = in shadow.
    """
    u, v, z = (np.asarray(a, np.float64).ravel() for a in (u, v, z))
    if u.size == 0:
        return np.zeros(0, np.float32)
    sun_uv, tan_el = _sun_uv(world, env)
    reach = min(float(world.boxes.h.max(initial=0.0)) / tan_el, MAX_SHADOW_M)
    if reach <= 0.3:
        return np.zeros(u.size, np.float32)
    distances = 0.3 * (reach / 0.3) ** (np.arange(steps) / (steps - 1))
    shadow = np.zeros(u.size, bool)
    flat = height.ravel()
    n = world.n
    for t in distances:
        iu, iv, inside = world.cell_index(u + sun_uv[0] * t, v + sun_uv[1] * t)
        h = np.where(inside, flat[np.where(inside, iv * n + iu, 0)], 0.0)
        shadow |= h > z + t * tan_el
    return shadow.astype(np.float32)

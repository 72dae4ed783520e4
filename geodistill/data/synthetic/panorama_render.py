"""Equirectangular panorama renderer: column-profile heightfield ray casting plus analytic primitives.

VIGOR convention: the image centre line (u = W/2) faces the heading, azimuth increases to the right;
pixel column i covers azimuths heading + 360 (i, i+1) / W - 180 and row j elevation pi (1/2 - (j+1/2)/H).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from geodistill.data.synthetic.albedo import ground_albedo
from geodistill.data.synthetic.environment import Environment, grade
from geodistill.data.synthetic.primitives import draw_poles, draw_trees
from geodistill.data.synthetic.raycast import cast_columns, refine_boxes
from geodistill.data.synthetic.shadows import ground_shadow_raster, point_shadow, sample_raster
from geodistill.data.synthetic.sky import horizon_colour, sky_colour
from geodistill.data.synthetic.surfaces import car_albedo, facade_albedo, roof_albedo
from geodistill.data.synthetic.kinds import KIND_CAR_BODY, KIND_CAR_CABIN
from geodistill.data.synthetic.world import World

KIND_SKY, KIND_GROUND, KIND_FACADE, KIND_ROOF, KIND_TREE, KIND_POLE, KIND_CAR = range(7)
KIND_NAMES = ("sky", "ground", "facade", "roof", "tree", "pole", "car")
FAR_GROUND_M = 20000.0


@dataclass
class Camera:
    """Camera in the world's raster frame (x east, y south), metres and degrees."""

    x: float
    y: float
    height_m: float
    heading_deg: float = 0.0
    roll_deg: float = 0.0
    pitch_deg: float = 0.0


@dataclass
class PanoramaRender:
    """A rendered panorama with its auxiliary maps."""

    image: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 ray length in metres, inf for sky
    kind: np.ndarray  # (H, W) uint8 KIND_* code
    timings: dict = field(default_factory=dict)


@dataclass
class _Buffers:
    albedo: np.ndarray
    lambert: np.ndarray
    ambient: np.ndarray
    point: np.ndarray
    depth: np.ndarray
    kind: np.ndarray
    gloss: np.ndarray


def render_panorama(world: World, env: Environment, camera: Camera, car_ids, size=(1024, 512),
                    hidden_buildings=(), seed: int = 0) -> PanoramaRender:
    """Render the panorama seen from ``camera``.

    Args:
        world: the world.
        env: the ground view's environment.
        camera: position, height, heading and roll/pitch jitter.
        car_ids: cars present in this view.
        size: (W, H), W = 2 H.
        hidden_buildings: buildings absent from this view.
        seed: sensor-noise and cloud seed.

    Returns:
        The panorama, depth and kind maps.
    """
    width, height_px = size
    if width != 2 * height_px:
        raise ValueError(f"panorama size must be 2:1 (W = 2 H), got {width}x{height_px}")
    timings, start = {}, time.perf_counter()
    rng = np.random.default_rng(seed)
    height, oid = world.view_rasters(np.asarray(car_ids, np.int64), np.asarray(hidden_buildings, np.int64))
    shadow_raster = ground_shadow_raster(world, env, np.asarray(car_ids, np.int64), hidden_buildings)
    timings["rasters_s"] = time.perf_counter() - start

    az = np.radians(camera.heading_deg + 360.0 * (np.arange(width) + 0.5) / width - 180.0)
    el = math.pi * (0.5 - (np.arange(height_px) + 0.5) / height_px)
    dir_u, dir_v = world.dir_xy_to_uv(np.sin(az), -np.cos(az))
    cu, cv = world.xy_to_uv(camera.x, camera.y)
    origin = np.array([cu, cv, camera.height_m])
    index, distances, sample_oid = cast_columns(world, height, oid, origin, dir_u, dir_v, el)
    hit = index < distances.size
    cols = np.broadcast_to(np.arange(width)[None], index.shape)
    oid_hit = np.where(hit, sample_oid[np.minimum(index, distances.size - 1), cols], 0)
    elev = np.broadcast_to(el[:, None], index.shape)
    timings["raycast_s"] = time.perf_counter() - start

    buf = _Buffers(
        albedo=np.zeros((height_px, width, 3), np.float32), lambert=np.zeros((height_px, width), np.float32),
        ambient=np.ones((height_px, width), np.float32), point=np.zeros((height_px, width, 3), np.float64),
        depth=np.full((height_px, width), np.inf, np.float32), kind=np.zeros((height_px, width), np.uint8),
        gloss=np.zeros((height_px, width), np.float32),
    )
    sun = env.sun_vector_xy()
    sun_u, sun_v = world.dir_xy_to_uv(sun[0], sun[1])
    sun_uvz = np.array([sun_u, sun_v, sun[2]])

    ground = (oid_hit == 0) & (elev < 0)
    rows, cc = np.nonzero(ground)
    horizontal = np.minimum(camera.height_m / np.tan(-el[rows]), FAR_GROUND_M)
    gu, gv = cu + horizontal * dir_u[cc], cv + horizontal * dir_v[cc]
    buf.albedo[rows, cc] = ground_albedo(world, gu, gv, env)
    buf.lambert[rows, cc] = sun[2] * (1.0 - sample_raster(world, shadow_raster, gu, gv))
    buf.depth[rows, cc] = np.hypot(horizontal, camera.height_m)
    buf.kind[rows, cc] = KIND_GROUND
    timings["ground_s"] = time.perf_counter() - start

    rows, cc = np.nonzero(hit & (oid_hit > 0))
    if rows.size:
        _shade_boxes(world, buf, rows, cc, oid_hit[rows, cc], el, dir_u, dir_v, origin, distances, index, sun_uvz)
    draw_trees(world, env, origin, camera.heading_deg, el, buf, sun_uvz)
    draw_poles(world, origin, camera.heading_deg, el, buf, sun_uvz)
    timings["objects_s"] = time.perf_counter() - start

    raised = (buf.kind >= KIND_FACADE) & (buf.lambert > 0)
    rr, rc = np.nonzero(raised)
    p = buf.point[rr, rc]
    shadow = point_shadow(world, height, p[:, 0], p[:, 1], p[:, 2], env)
    buf.lambert[rr, rc] *= 1.0 - shadow
    timings["shadows_s"] = time.perf_counter() - start

    image = _compose(world, env, buf, az, el, rng)
    image, depth, kind = _apply_jitter(image, buf.depth, buf.kind, camera.roll_deg, camera.pitch_deg)
    image = grade(image, env)
    image += rng.normal(0.0, 0.012, image.shape).astype(np.float32)
    image = cv2.GaussianBlur(image, (0, 0), 0.55)
    out = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    timings["total_s"] = time.perf_counter() - start
    return PanoramaRender(out, depth, kind, timings)


def _shade_boxes(world, buf, rows, cc, box_ids, el, dir_u, dir_v, origin, distances, index, sun_uvz):
    b = world.boxes
    cos_el = np.cos(el[rows])
    directions = np.stack([cos_el * dir_u[cc], cos_el * dir_v[cc], np.sin(el[rows])], 1)
    t, axis, box, valid = refine_boxes(world, origin, directions, box_ids)
    fallback = distances[index[rows, cc]] / np.maximum(cos_el, 1e-6)
    t = np.where(valid, t, fallback)
    point = origin + t[:, None] * directions
    normal = np.zeros_like(point)
    pick = np.arange(axis.size)
    normal[pick, np.minimum(axis, 2)] = np.where(axis == 2, 1.0, -np.sign(directions[pick, np.minimum(axis, 1)]))
    kind = b.kind[box]
    is_car = (kind == KIND_CAR_BODY) | (kind == KIND_CAR_CABIN)
    facade = ~is_car & (axis < 2)
    roof = ~is_car & (axis == 2)
    albedo = np.zeros((box.size, 3), np.float32)
    gloss = np.zeros(box.size, np.float32)
    if facade.any():
        albedo[facade], gloss[facade] = facade_albedo(world, box[facade], axis[facade], point[facade, 0],
                                                      point[facade, 1], point[facade, 2], el[rows[facade]])
    if roof.any():
        albedo[roof] = roof_albedo(world, box[roof], point[roof, 0], point[roof, 1])
    if is_car.any():
        albedo[is_car] = car_albedo(world, box[is_car], axis[is_car], point[is_car, 2])
        gloss[is_car] = np.where(axis[is_car] == 2, 0.05, 0.12)
    buf.albedo[rows, cc] = albedo
    buf.gloss[rows, cc] = gloss
    buf.lambert[rows, cc] = np.maximum(normal @ sun_uvz, 0.0)
    buf.ambient[rows, cc] = np.where(axis == 2, 1.0, 0.72 + 0.28 * np.clip(point[:, 2] / 4.0, 0, 1))
    buf.point[rows, cc] = point + normal * 0.05
    buf.depth[rows, cc] = t
    buf.kind[rows, cc] = np.where(is_car, KIND_CAR, np.where(roof, KIND_ROOF, KIND_FACADE))


def _compose(world, env, buf, az, el, rng) -> np.ndarray:
    sun_rgb, ambient_rgb = env.light()
    colour = buf.albedo * (ambient_rgb[None, None] * buf.ambient[..., None] + sun_rgb[None, None] * buf.lambert[..., None])
    horizon = horizon_colour(env)
    colour += buf.gloss[..., None] * horizon * 0.35
    sky = buf.kind == KIND_SKY
    rows, cols = np.nonzero(sky)
    colour[rows, cols] = sky_colour(az[cols], el[rows], env, float(rng.uniform(0, 100)))
    fog = np.exp(-np.where(sky, 0.0, buf.depth) / env.haze_m).astype(np.float32)
    colour = colour * fog[..., None] + horizon * (1 - fog[..., None])
    return colour.astype(np.float32)


def _apply_jitter(image, depth, kind, roll_deg, pitch_deg):
    """Resample the panorama as seen by a camera rolled and pitched by a small angle."""
    if roll_deg == 0 and pitch_deg == 0:
        return image, depth, kind
    h, w = depth.shape
    az = np.radians(360.0 * (np.arange(w) + 0.5) / w - 180.0)[None]
    el = (math.pi * (0.5 - (np.arange(h) + 0.5) / h))[:, None]
    x, y, z = np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el) * np.ones_like(az)
    r, p = math.radians(roll_deg), math.radians(pitch_deg)
    y, z = y * math.cos(p) - z * math.sin(p), y * math.sin(p) + z * math.cos(p)
    x, z = x * math.cos(r) + z * math.sin(r), -x * math.sin(r) + z * math.cos(r)
    src_az, src_el = np.arctan2(x, y), np.arcsin(np.clip(z, -1, 1))
    map_x = ((src_az + math.pi) / (2 * math.pi) * w - 0.5).astype(np.float32)
    map_y = ((0.5 - src_el / math.pi) * h - 0.5).astype(np.float32)
    image = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    depth = cv2.remap(depth, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_WRAP)
    kind = cv2.remap(kind, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_WRAP)
    return image, depth, kind


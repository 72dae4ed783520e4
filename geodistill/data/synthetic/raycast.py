"""Column-profile heightfield ray casting (one searchsorted for the whole panorama) and exact refinement."""

from __future__ import annotations

import numpy as np

from geodistill.data.synthetic.kinds import KIND_CAR_BODY, KIND_CAR_CABIN
from geodistill.data.synthetic.world import World

MAX_DISTANCE_M = 180.0


def sample_distances(near_step: float = 0.05, near_end: float = 6.0, ratio: float = 1.012,
                     far: float = MAX_DISTANCE_M) -> np.ndarray:
    """Horizontal sample distances: ``near_step`` steps to ``near_end``, then geometric to ``far``, (N,)."""
    near = np.arange(near_step, near_end, near_step)
    count = int(np.ceil(np.log(far / near_end) / np.log(ratio)))
    return np.concatenate([near, near_end * ratio ** np.arange(count + 1)])


def cast_columns(world: World, height: np.ndarray, oid: np.ndarray, camera_uvz, dir_u, dir_v, elevations_rad):
    """First heightfield sample hit by every (row, column) ray.

    Args:
        world: the world (frame, cell).
        height, oid: (n, n) view rasters.
        camera_uvz: (u, v, z) of the camera, metres.
        dir_u, dir_v: (W,) horizontal unit direction of each column in the street frame.
        elevations_rad: (H,) elevation of each row.

    Returns:
        (index (H, W) int64 sample index, N where nothing is hit; distances (N,); sample oids (N, W)).
    """
    cu, cv, cz = camera_uvz
    s = sample_distances()
    count, width = s.size, dir_u.size
    iu, iv, inside = world.cell_index(cu + s[:, None] * dir_u[None], cv + s[:, None] * dir_v[None])
    flat = np.where(inside, iv * world.n + iu, 0)
    h = np.where(inside, height.ravel()[flat], 0.0)
    sample_oid = np.where(inside, oid.ravel()[flat], 0)
    top = np.arctan2(h - cz, s[:, None])
    running = np.maximum.accumulate(top, axis=0).T  # (W, N), non-decreasing per column
    offsets = 4.0 * np.arange(width)
    keys = (running + offsets[:, None]).ravel()
    queries = elevations_rad[:, None] + offsets[None]
    index = np.searchsorted(keys, queries.ravel(), side="left").reshape(queries.shape)
    index = index - (np.arange(width) * count)[None]
    return np.minimum(index, count), s, sample_oid


def slab_intersect(origin, directions, u0, u1, v0, v1, h):
    """Entry of rays into boxes [u0,u1]x[v0,v1]x[0,h] (street frame).

    Args:
        origin: (3,) ray origin.
        directions: (M, 3) unit directions.
        u0, u1, v0, v1, h: (M,) box bounds.

    Returns:
        (t (M,) entry distance, axis (M,) 0/1/2 of the entry face, valid (M,) bool).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / directions
        lo = np.stack([u0, v0, np.zeros_like(h)], 1)
        hi = np.stack([u1, v1, h], 1)
        t1, t2 = (lo - origin) * inv, (hi - origin) * inv
        near = np.where(np.isnan(t1), -np.inf, np.minimum(t1, t2))
        far = np.where(np.isnan(t2), np.inf, np.maximum(t1, t2))
    t_near = near.max(axis=1)
    axis = near.argmax(axis=1)
    valid = (t_near <= far.min(axis=1) + 1e-6) & (t_near > 0)
    return t_near, axis, valid


def refine_boxes(world: World, origin, directions, box_ids):
    """Exact first hit with the box each ray's raster sample found (cars as body + cabin).

    Returns:
        (t, axis, box, valid), each (M,).
    """
    b = world.boxes
    t, axis, valid = slab_intersect(origin, directions, b.u0[box_ids], b.u1[box_ids], b.v0[box_ids],
                                    b.v1[box_ids], b.h[box_ids])
    box = box_ids.copy()
    kind = b.kind[box_ids]
    is_car = (kind == KIND_CAR_BODY) | (kind == KIND_CAR_CABIN)
    if is_car.any():
        car = b.owner[box_ids[is_car]]
        other = np.where(kind[is_car] == KIND_CAR_BODY, world.cars["cabin_box"][car], world.cars["body_box"][car])
        t2, axis2, valid2 = slab_intersect(origin, directions[is_car], b.u0[other], b.u1[other], b.v0[other],
                                           b.v1[other], b.h[other])
        take = valid2 & (~valid[is_car] | (t2 < t[is_car]))
        sel = np.nonzero(is_car)[0]
        t[sel[take]], axis[sel[take]], box[sel[take]] = t2[take], axis2[take], other[take]
        valid[sel[take]] = True
    return t, axis, box, valid

"""Analytic trees (ellipsoid crowns, cylinder trunks) and lamp poles, depth-tested into a panorama."""

from __future__ import annotations

import math

import numpy as np

from geodistill.data.synthetic import noise, palettes
from geodistill.data.synthetic.raycast import MAX_DISTANCE_M

KIND_TREE, KIND_POLE = 4, 5
BARK = np.array([0.26, 0.21, 0.16], np.float32)
METAL = np.array([0.42, 0.43, 0.44], np.float32)


def _window(world, origin, heading_deg, el, width, pu, pv, radius, z_top):
    """Pixel window (rows, columns) that can see an upright object of ``radius`` at (pu, pv)."""
    du, dv = pu - origin[0], pv - origin[1]
    dist = math.hypot(du, dv)
    if dist > MAX_DISTANCE_M or dist <= radius + 0.05:
        return None
    dx, dy = world.uv_to_xy(du, dv)
    azimuth = math.degrees(math.atan2(dx, -dy))
    centre = ((azimuth - heading_deg + 180.0) / 360.0 * width - 0.5)
    half = math.degrees(math.asin(min(radius / dist, 1.0))) / 360.0 * width + 1.5
    cols = np.arange(int(math.floor(centre - half)), int(math.ceil(centre + half)) + 1) % width
    height_px = el.size
    near = max(dist - radius, 0.1)
    el_top = math.atan2(z_top - origin[2], near)
    el_bottom = math.atan2(-origin[2], near)
    row_top = int(max(math.floor((0.5 - el_top / math.pi) * height_px - 1), 0))
    row_bottom = int(min(math.ceil((0.5 - el_bottom / math.pi) * height_px + 1), height_px))
    if row_bottom <= row_top:
        return None
    return np.arange(row_top, row_bottom), np.unique(cols), dist


def _rays(world, heading_deg, el, rows, cols, width):
    az = np.radians(heading_deg + 360.0 * (cols + 0.5) / width - 180.0)
    du, dv = world.dir_xy_to_uv(np.sin(az), -np.cos(az))
    e = el[rows][:, None]
    return np.stack(np.broadcast_arrays(np.cos(e) * du[None], np.cos(e) * dv[None], np.sin(e)), -1)


def _write(buf, rows, cols, mask, t, albedo, lambert, point, kind, ambient):
    rr, cc = np.nonzero(mask)
    r, c = rows[rr], cols[cc]
    closer = t[rr, cc] < buf.depth[r, c]
    r, c, rr, cc = r[closer], c[closer], rr[closer], cc[closer]
    buf.depth[r, c] = t[rr, cc]
    buf.albedo[r, c] = albedo[rr, cc]
    buf.lambert[r, c] = lambert[rr, cc]
    buf.point[r, c] = point[rr, cc]
    buf.kind[r, c] = kind
    buf.ambient[r, c] = ambient[rr, cc]
    buf.gloss[r, c] = 0.0


def _cylinder(buf, world, origin, heading_deg, el, pu, pv, radius, top, colour, kind, sun_uvz):
    width = buf.depth.shape[1]
    win = _window(world, origin, heading_deg, el, width, pu, pv, radius, top)
    if win is None:
        return
    rows, cols, _ = win
    d = _rays(world, heading_deg, el, rows, cols, width)
    horiz = np.hypot(d[..., 0], d[..., 1])
    hu, hv = d[..., 0] / horiz, d[..., 1] / horiz
    cu, cv = pu - origin[0], pv - origin[1]
    along = cu * hu + cv * hv
    perp = cu * hv - cv * hu
    inside = np.abs(perp) < radius
    s = along - np.sqrt(np.maximum(radius ** 2 - perp ** 2, 0.0))
    z = origin[2] + s * d[..., 2] / horiz
    mask = inside & (s > 0) & (z >= 0) & (z <= top)
    if not mask.any():
        return
    t = s / horiz
    point = origin + t[..., None] * d
    nu, nv = (point[..., 0] - pu) / radius, (point[..., 1] - pv) / radius
    lambert = np.maximum(nu * sun_uvz[0] + nv * sun_uvz[1], 0.0)
    albedo = np.broadcast_to(colour, point.shape).astype(np.float32)
    point = point + np.stack([nu, nv, np.zeros_like(nu)], -1) * 0.05
    _write(buf, rows, np.asarray(cols), mask, t, albedo, lambert, point, kind, np.full(t.shape, 0.85))


def draw_trees(world, env, origin, heading_deg, el, buf, sun_uvz):
    """Depth-test every tree within range into the buffers (crowns, then trunks)."""
    trees = world.trees
    width = buf.depth.shape[1]
    bare = env.season == "winter"
    leaves = palettes.LEAF[env.season]
    for i in range(len(trees["u"])):
        pu, pv, a, c = trees["u"][i], trees["v"][i], trees["radius"][i], trees["semi_c"][i]
        zc = trees["base"][i] + c
        trunk_top = zc - (0.0 if bare else 0.4 * c)
        _cylinder(buf, world, origin, heading_deg, el, pu, pv, trees["trunk_r"][i], trunk_top, BARK * trees["tone"][i],
                  KIND_TREE, sun_uvz)
        win = _window(world, origin, heading_deg, el, width, pu, pv, a * 1.05, zc + c * 1.05)
        if win is None:
            continue
        rows, cols, _ = win
        d = _rays(world, heading_deg, el, rows, cols, width)
        scale = np.array([a, a, c]) * 1.05
        o = (origin - np.array([pu, pv, zc])) / scale
        dp = d / scale
        qa = (dp ** 2).sum(-1)
        qb = (dp * o).sum(-1)
        qc = (o ** 2).sum() - 1.0
        disc = qb ** 2 - qa * qc
        ok = disc > 0
        t = (-qb - np.sqrt(np.maximum(disc, 0))) / qa
        ok &= t > 0
        if not ok.any():
            continue
        rho2 = np.clip(qc + 1.0 - qb ** 2 / qa, 0, None)
        local = o + t[..., None] * dp
        phi = np.arctan2(local[..., 1], local[..., 0]).astype(np.float32)
        clump = noise.sample(phi * (a * 1.3) + 17.0 * i, local[..., 2].astype(np.float32) * c, 1.6, 11.0)
        if bare:
            twigs = noise.sample(phi * (a * 4.0) + 17.0 * i, local[..., 2].astype(np.float32) * c * 3, 0.5, 12.0)
            ok &= (twigs > 0.5) & (rho2 < 0.9)
        else:
            ok &= np.sqrt(rho2) < 0.78 + 0.3 * clump
        normal = local / np.linalg.norm(local, axis=-1, keepdims=True)
        lambert = np.maximum(normal @ sun_uvz, 0.0) * (0.55 + 0.6 * clump)
        tone = trees["tone"][i] * (0.6 + 0.7 * clump) * np.where(normal[..., 2] < -0.3, 0.7, 1.0)
        colour = leaves[int(trees["leaf"][i]) % len(leaves)].astype(np.float32)
        albedo = colour[None, None] * tone[..., None].astype(np.float32)
        point = origin + t[..., None] * d
        ambient = 0.55 + 0.35 * (normal[..., 2] + 1) / 2
        _write(buf, rows, cols, ok, t, albedo, lambert, point + normal * 0.3, KIND_TREE, ambient)


def draw_poles(world, origin, heading_deg, el, buf, sun_uvz):
    """Depth-test every lamp pole within range into the buffers."""
    poles = world.poles
    for i in range(len(poles["u"])):
        _cylinder(buf, world, origin, heading_deg, el, poles["u"][i], poles["v"][i], 0.09, poles["height"][i], METAL,
                  KIND_POLE, sun_uvz)

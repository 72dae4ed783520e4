"""Analytic ground albedo in the street frame: asphalt, markings, crosswalks, sidewalks, lots.

Because it is a function of continuous (u, v) rather than a texture, the panorama's near field and the
aerial tile both sample it at their own resolution without staircase edges.
"""

from __future__ import annotations

import numpy as np

from geodistill.data.synthetic import noise, palettes
from geodistill.data.synthetic.furniture import PARKING_PERIOD_M, STALL_WIDTH_M
from geodistill.data.synthetic.kinds import (
    GROUND_CONCRETE, GROUND_DIRT, GROUND_GRASS, GROUND_NONE, GROUND_PARKING, GROUND_PLAZA,
)
from geodistill.data.synthetic.world import World

WHITE = np.array([0.86, 0.86, 0.84], np.float32)
YELLOW = np.array([0.85, 0.70, 0.22], np.float32)
CONCRETE = np.array([0.62, 0.61, 0.58], np.float32)


def _frac(x):
    return x - np.floor(x)


def _lane_markings(lat, along, beyond, half_width, major, side_sign):
    """Masks (white, yellow) of one street's markings; ``beyond`` is the distance past the crossing road edge."""
    alat = np.abs(lat)
    free = beyond > 4.6
    dash = _frac(along / 9.0) < 0.4
    yellow = free & major & (alat > 0.08) & (alat < 0.22)
    white = free & ~major & (alat < 0.07) & dash
    lane = np.abs(alat - half_width / 2) < 0.07
    white |= free & major & lane & dash
    white |= free & (np.abs(alat - (half_width - 0.35)) < 0.06) & major
    cross = (beyond > 0.6) & (beyond < 3.6) & (alat < half_width - 0.3) & (_frac(lat / 1.1) < 0.5)
    stop = (beyond > 4.0) & (beyond < 4.4) & (lat * side_sign > 0.2) & (alat < half_width - 0.3)
    return white | cross | stop, yellow


def ground_albedo(world: World, u: np.ndarray, v: np.ndarray, env) -> np.ndarray:
    """Ground colour at street-frame points.

    Args:
        world: the world.
        u, v: (N,) street-frame coordinates, metres.
        env: the view's :class:`Environment` (season, snow, asphalt tone).

    Returns:
        (N, 3) float32 albedo in [0, 1].
    """
    u = np.asarray(u, np.float64).ravel()
    v = np.asarray(v, np.float64).ravel()
    su, sv = world.streets_u, world.streets_v
    iu_line, du = su.nearest(u)
    iv_line, dv = sv.nearest(v)
    hwu, hwv = su.half_width[iu_line], sv.half_width[iv_line]
    on_u, on_v = np.abs(du) < hwu, np.abs(dv) < hwv
    road = on_u | on_v
    walk_u = np.abs(du) < hwu + su.sidewalk[iu_line]
    walk_v = np.abs(dv) < hwv + sv.sidewalk[iv_line]
    sidewalk = ~road & (walk_u | walk_v)
    lot_area = ~road & ~sidewalk
    out = np.empty((u.size, 3), np.float32)
    uf, vf = u.astype(np.float32), v.astype(np.float32)

    r = np.nonzero(road)[0]
    if r.size:
        shift = env.texture_offset
        n1 = noise.sample(uf[r], vf[r], 3.0, shift)
        n2 = noise.sample(uf[r], vf[r], 0.25, 1.0 + shift)
        wear = noise.sample(uf[r], vf[r], 20.0, 2.0 + shift)
        grey = 0.29 * (0.86 + 0.16 * n1 + 0.22 * (n2 - 0.5)) * (0.9 + 0.2 * wear)
        colour = grey[:, None] * np.asarray(env.asphalt_tone, np.float32)
        ou, ov = on_u[r], on_v[r]
        white = np.zeros(r.size, bool)
        yellow = np.zeros(r.size, bool)
        seg = ou & ~ov
        w, y = _lane_markings(du[r][seg], v[r][seg], np.abs(dv[r][seg]) - hwv[r][seg], hwu[r][seg],
                              su.major[iu_line[r][seg]], np.sign(dv[r][seg]))
        white[seg], yellow[seg] = w, y
        seg = ov & ~ou
        w, y = _lane_markings(dv[r][seg], u[r][seg], np.abs(du[r][seg]) - hwu[r][seg], hwv[r][seg],
                              sv.major[iv_line[r][seg]], -np.sign(du[r][seg]))
        white[seg], yellow[seg] = w, y
        paint = ((0.72 + 0.3 * n1) * env.paint + (1 - env.paint) * grey)[:, None]
        colour = np.where(white[:, None], WHITE * paint, colour)
        colour = np.where(yellow[:, None], YELLOW * paint, colour)
        out[r] = colour

    s = np.nonzero(sidewalk)[0]
    if s.size:
        n1 = noise.sample(uf[s], vf[s], 2.0, 3.0 + env.texture_offset)
        use_u = walk_u[s] & (~walk_v[s] | (np.abs(du[s]) - hwu[s] < np.abs(dv[s]) - hwv[s]))
        along = np.where(use_u, v[s], u[s])
        edge = np.where(use_u, np.abs(du[s]) - hwu[s], np.abs(dv[s]) - hwv[s])
        shade = (0.9 + 0.2 * n1) * np.where(_frac(along / 1.6) < 0.035, 0.8, 1.0) * env.sidewalk_tone
        colour = CONCRETE[None] * shade[:, None]
        colour = np.where((edge < 0.25)[:, None], np.float32(0.75) * (0.95 + 0.1 * n1)[:, None], colour)
        if env.snow:
            snow = (noise.sample(uf[s], vf[s], 1.5, 4.0) > 0.45)[:, None]
            colour = np.where(snow, np.float32(0.9), colour)
        out[s] = colour

    g = np.nonzero(lot_area)[0]
    if g.size:
        out[g] = _lot_albedo(world, u[g], v[g], env)
    return np.clip(out, 0.0, 1.0)


def _lot_albedo(world: World, u, v, env) -> np.ndarray:
    iu, iv, inside = world.cell_index(u, v)
    material = np.full(u.size, GROUND_NONE, np.uint8)
    lot = np.full(u.size, -1, np.int64)
    material[inside] = world.ground[iv[inside], iu[inside]]
    lot[inside] = world.lot[iv[inside], iu[inside]]
    uf, vf = u.astype(np.float32), v.astype(np.float32)
    lots = world.lots
    out = np.empty((u.size, 3), np.float32)

    def tint(sel):
        return np.where((lot[sel] >= 0)[:, None], lots.tint[np.maximum(lot[sel], 0)], 1.0).astype(np.float32)

    sel = np.nonzero((material == GROUND_GRASS) | (material == GROUND_NONE))[0]
    if sel.size:
        n1, n2 = noise.sample(uf[sel], vf[sel], 4.0, 5.0), noise.sample(uf[sel], vf[sel], 0.4, 6.0)
        base = np.asarray(palettes.GRASS[env.season], np.float32)
        colour = base * ((0.7 + 0.55 * n1) * (0.88 + 0.24 * n2))[:, None] * tint(sel) ** 0.5
        if env.snow:
            colour = np.where((n2 > 0.3)[:, None], np.float32(0.9) * (0.95 + 0.05 * n1)[:, None], colour)
        out[sel] = colour

    sel = np.nonzero(material == GROUND_CONCRETE)[0]
    if sel.size:
        n1 = noise.sample(uf[sel], vf[sel], 4.0, 5.0)
        out[sel] = CONCRETE * (0.88 + 0.18 * n1)[:, None] * tint(sel) ** 0.3

    sel = np.nonzero(material == GROUND_PLAZA)[0]
    if sel.size:
        n1 = noise.sample(uf[sel], vf[sel], 4.0, 5.0)
        size = lots.tile_m[np.maximum(lot[sel], 0)]
        tu, tv = u[sel] / size, v[sel] / size
        tile = 0.9 + 0.2 * noise.hash01(np.floor(tu), np.floor(tv), lot[sel])
        grout = (_frac(tu) < 0.05) | (_frac(tv) < 0.05)
        shade = (tile * np.where(grout, 0.78, 1.0) * (0.93 + 0.1 * n1) * env.sidewalk_tone).astype(np.float32)
        out[sel] = np.array([0.66, 0.61, 0.55], np.float32) * shade[:, None] * tint(sel)

    sel = np.nonzero(material == GROUND_PARKING)[0]
    if sel.size:
        n1, n2 = noise.sample(uf[sel], vf[sel], 4.0, 5.0), noise.sample(uf[sel], vf[sel], 0.4, 6.0)
        index = np.maximum(lot[sel], 0)
        axis = lots.stall_axis[index]
        a = np.where(axis == 0, u[sel] - lots.u0[index], v[sel] - lots.v0[index]) - 0.3
        b = np.where(axis == 0, v[sel] - lots.v0[index], u[sel] - lots.u0[index])
        row = np.mod(b, PARKING_PERIOD_M)
        in_stalls = (row < 5.2) | (row > 11.2)
        line = in_stalls & (np.abs(a - STALL_WIDTH_M * np.round(a / STALL_WIDTH_M)) < 0.06) & (a > -0.1)
        grey = (0.34 * (0.8 + 0.3 * n1) * (0.9 + 0.2 * n2)).astype(np.float32)
        out[sel] = np.where(line[:, None], WHITE * 0.85, grey[:, None] * np.ones(3, np.float32))

    sel = np.nonzero(material == GROUND_DIRT)[0]
    if sel.size:
        n1 = noise.sample(uf[sel], vf[sel], 4.0, 5.0)
        out[sel] = np.array([0.47, 0.40, 0.31], np.float32) * (0.8 + 0.35 * n1)[:, None]
    return out

"""Albedo of box surfaces seen from the street: facades with windows and shop fronts, roofs, cars."""

from __future__ import annotations

import numpy as np

from geodistill.data.synthetic import noise
from geodistill.data.synthetic.kinds import KIND_BUILDING, KIND_CAR_BODY, KIND_CAR_CABIN, KIND_UNIT
from geodistill.data.synthetic.world import World

UNIT_GREY = np.array([0.62, 0.63, 0.64], np.float32)
SHOP_GLASS = np.array([0.10, 0.12, 0.14], np.float32)


def facade_albedo(world: World, box, axis, pu, pv, pz, elevation_rad):
    """Facade colour at exact wall points.

    Args:
        world: the world.
        box: (M,) box ids (buildings or rooftop units).
        axis: (M,) 0 for walls of constant u, 1 for walls of constant v.
        pu, pv, pz: (M,) hit point, street frame.
        elevation_rad: (M,) ray elevation (windows reflect a brighter sky when seen from below).

    Returns:
        ((M, 3) float32 albedo, (M,) float32 specular weight of glass).
    """
    b = world.boxes
    out = np.tile(UNIT_GREY, (box.size, 1))
    gloss = np.zeros(box.size, np.float32)
    sel = np.nonzero(b.kind[box] == KIND_BUILDING)[0]
    if sel.size == 0:
        return out, gloss
    bx = box[sel]
    bi = b.owner[bx]
    bld = world.buildings
    along = np.where(axis[sel] == 0, pv[sel] - b.v0[bx], pu[sel] - b.u0[bx])
    length = np.where(axis[sel] == 0, b.v1[bx] - b.v0[bx], b.u1[bx] - b.u0[bx])
    z = pz[sel]
    grain = noise.sample(along.astype(np.float32) + bi * 13.0, z.astype(np.float32), 6.0, 8.0)
    colour = bld["facade_rgb"][bi] * (0.88 + 0.2 * grain)[:, None]
    gf, fh, sp = bld["ground_floor_h"][bi], bld["floor_h"][bi], bld["win_sp"][bi]
    zf = z - gf
    floor = np.floor(zf / fh)
    lz = zf - floor * fh
    columns = np.maximum(1, np.floor((length - 1.6) / sp))
    margin = (length - columns * sp) / 2
    la = along - margin
    col = np.floor(la / sp)
    lx = la - col * sp
    grid = (la >= 0) & (col < columns) & (zf >= 0) & (z < b.h[bx] - 0.8)
    glass_tower = bld["glass"][bi]
    window = grid & (np.abs(lx - sp / 2) < bld["win_w"][bi] / 2) & (lz > fh * 0.28) & (lz < fh * (0.28 + bld["win_frac"][bi]))
    curtain = glass_tower & (zf >= 0) & (z < b.h[bx] - 0.5) & (np.abs(lx - sp / 2) < sp / 2 - 0.12) & (lz > 0.45)
    window = np.where(glass_tower, curtain, window)
    variation = noise.hash01(floor, col, bi)
    sky = np.clip(0.25 + 0.6 * np.sin(np.clip(elevation_rad[sel], 0, None)) + 0.15 * z / np.maximum(b.h[bx], 1), 0, 1)
    glass = bld["glass_rgb"][bi] * (0.55 + 0.5 * variation)[:, None] + 0.25 * sky[:, None]
    colour = np.where(window[:, None], glass, colour)
    shop = bld["shop"][bi] & (z < gf)
    pillar = np.mod(along, 4.2) < 0.55
    sign_band = shop & (z > gf - 0.95) & (z < gf - 0.25) & ~pillar
    shop_glass = shop & (z > 0.25) & (z < gf - 1.1) & ~pillar
    colour = np.where(sign_band[:, None], bld["sign_rgb"][bi], colour)
    lit = SHOP_GLASS + 0.12 * noise.hash01(np.floor(along / 4.2), bi)[:, None]
    colour = np.where(shop_glass[:, None], lit, colour)
    plain_ground = ~bld["shop"][bi] & (z < gf) & (z > 0.9) & (z < 2.6) & (np.abs(np.mod(along, sp) - sp / 2) < 0.6)
    colour = np.where(plain_ground[:, None], colour * 0.45, colour)
    colour = np.where((z < 0.3)[:, None], colour * 0.7, colour)
    out[sel] = colour
    gloss[sel] = np.where(window | shop_glass, 0.35, 0.0)
    return out.astype(np.float32), gloss


def roof_albedo(world: World, box, pu, pv):
    """Roof colour of buildings and units at (pu, pv), (M, 3) float32."""
    b = world.boxes
    out = np.tile(UNIT_GREY, (box.size, 1))
    sel = b.kind[box] == KIND_BUILDING
    grain = noise.sample(pu.astype(np.float32), pv.astype(np.float32), 5.0, 9.0)
    out[sel] = world.buildings["roof_rgb"][b.owner[box[sel]]]
    edge = np.minimum.reduce([pu - b.u0[box], b.u1[box] - pu, pv - b.v0[box], b.v1[box] - pv])
    parapet = sel & (edge < 0.4)
    out = out * (0.85 + 0.25 * grain)[:, None]
    out[parapet] = out[parapet] * 1.12 + 0.04
    unit = b.kind[box] == KIND_UNIT
    out[unit] = out[unit] * (0.95 + 0.1 * (edge[unit] > 0.3))[:, None]
    return np.clip(out, 0, 1).astype(np.float32)


def car_albedo(world: World, box, axis, pz):
    """Car colour: body paint, dark tyres and sills, dark cabin glass with a painted roof, (M, 3)."""
    b = world.boxes
    car = b.owner[box]
    paint = world.cars["rgb"][car]
    body_top = b.h[world.cars["body_box"][car]]
    colour = paint.copy()
    cabin = b.kind[box] == KIND_CAR_CABIN
    glass = cabin & (axis != 2) & (pz > body_top + 0.05)
    colour[glass] = np.array([0.07, 0.08, 0.10], np.float32) + 0.08 * paint[glass]
    under = (b.kind[box] == KIND_CAR_BODY) & (axis != 2) & (pz < 0.4)
    colour[under] = np.array([0.05, 0.05, 0.05], np.float32)
    trim = (axis != 2) & (pz > 0.4) & (pz < 0.55)
    colour[trim] = colour[trim] * 0.6
    return colour.astype(np.float32)

"""North-up aerial renderer: ground albedo, cast shadows, painter's pass with off-nadir lean, crowns.

Pixel (row r, column c) of a ``size`` image centred at raster point (x0, y0) covers
x in x0 + mpp (c - size/2 + [0, 1)), y in y0 + mpp (r - size/2 + [0, 1)) (x east, y south).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from geodistill.data.synthetic import noise, palettes
from geodistill.data.synthetic.albedo import ground_albedo
from geodistill.data.synthetic.environment import Environment, grade
from geodistill.data.synthetic.shadows import ground_shadow_raster, point_shadow, sample_raster
from geodistill.data.synthetic.kinds import KIND_BUILDING, KIND_CAR_BODY, KIND_CAR_CABIN, KIND_UNIT
from geodistill.data.synthetic.world import World

_SHIFT = 4


def render_aerial(world: World, env: Environment, center_xy, size: int, mpp: float, car_ids, lean_deg=0.0,
                  lean_azimuth_deg=0.0, hidden_buildings=()) -> np.ndarray:
    """Render a north-up orthophoto (before degradation).

    Args:
        world: the world.
        env: the aerial view's environment.
        center_xy: (x east, y south) raster-frame point at the image centre, metres.
        size: side in pixels.
        mpp: metres per pixel.
        car_ids: cars present in this view.
        lean_deg: off-nadir lean; tops of objects shift by h tan(lean) towards ``lean_azimuth_deg``.
        lean_azimuth_deg: direction of the shift, clockwise from north.
        hidden_buildings: buildings absent from this view.

    Returns:
        (size, size, 3) float32 linear-ish colour in [0, 1].
    """
    car_ids = np.asarray(car_ids, np.int64)
    cols = (np.arange(size) + 0.5 - size / 2) * mpp + center_xy[0]
    rows = (np.arange(size) + 0.5 - size / 2) * mpp + center_xy[1]
    gx, gy = np.meshgrid(cols, rows)
    gu, gv = world.xy_to_uv(gx.ravel(), gy.ravel())
    sun_rgb, amb_rgb = env.light()
    sun = env.sun_vector_xy()
    albedo = ground_albedo(world, gu, gv, env)
    shadow = sample_raster(world, ground_shadow_raster(world, env, car_ids, hidden_buildings), gu, gv)
    image = albedo * (amb_rgb + sun_rgb * (sun[2] * (1 - shadow))[:, None])
    image = image.reshape(size, size, 3)

    lean = math.tan(math.radians(lean_deg))
    shift_xy = lean * np.array([math.sin(math.radians(lean_azimuth_deg)), -math.cos(math.radians(lean_azimuth_deg))])
    code = _painter(world, car_ids, hidden_buildings, center_xy, size, mpp, shift_xy)
    _shade_boxes(world, env, image, code, gx, gy, shift_xy, car_ids, hidden_buildings)
    _draw_crowns(world, env, image, code, center_xy, size, mpp, shift_xy)
    return image


def _to_px(xy, center_xy, size, mpp):
    px = (np.asarray(xy) - np.asarray(center_xy)) / mpp + size / 2 - 0.5
    return np.round(px * (1 << _SHIFT)).astype(np.int32)


def _visible_boxes(world, car_ids, hidden, center_xy, size, mpp):
    b = world.boxes
    keep = np.isin(b.kind, (KIND_BUILDING, KIND_UNIT)) & ~np.isin(b.owner, np.asarray(hidden, np.int64))
    keep[0] = False
    if len(car_ids):
        keep[world.cars["body_box"][car_ids]] = True
        keep[world.cars["cabin_box"][car_ids]] = True
    cu, cv = world.xy_to_uv(*center_xy)
    reach = size * mpp * 0.75 + 100.0
    near = (b.u1 > cu - reach) & (b.u0 < cu + reach) & (b.v1 > cv - reach) & (b.v0 < cv + reach)
    index = np.nonzero(keep & near)[0]
    return index[np.argsort(b.h[index], kind="stable")]


def _painter(world, car_ids, hidden, center_xy, size, mpp, shift_xy) -> np.ndarray:
    """Box-code image: 2 b + 1 where the leaned facade of box b shows, 2 b + 2 where its roof shows."""
    b = world.boxes
    code = np.zeros((size, size), np.int32)
    for index in _visible_boxes(world, car_ids, hidden, center_xy, size, mpp):
        cu = np.array([b.u0[index], b.u1[index], b.u1[index], b.u0[index]])
        cv = np.array([b.v0[index], b.v0[index], b.v1[index], b.v1[index]])
        x, y = world.uv_to_xy(cu, cv)
        base = np.stack([x, y], 1)
        top = base + shift_xy * b.h[index]
        base_px, top_px = _to_px(base, center_xy, size, mpp), _to_px(top, center_xy, size, mpp)
        if np.any(shift_xy != 0):
            hull = cv2.convexHull(np.concatenate([base_px, top_px]))
            cv2.fillConvexPoly(code, hull, int(2 * index + 1), cv2.LINE_8, _SHIFT)
        cv2.fillConvexPoly(code, top_px, int(2 * index + 2), cv2.LINE_8, _SHIFT)
    return code


def _shade_boxes(world, env, image, code, gx, gy, shift_xy, car_ids, hidden):
    b = world.boxes
    rr, cc = np.nonzero(code)
    if rr.size == 0:
        return
    box = (code[rr, cc] - 1) // 2
    roof = (code[rr, cc] % 2) == 0
    h = b.h[box]
    # roof points: undo the lean to find the roof location
    px = gx[rr, cc] - np.where(roof, shift_xy[0] * h, 0.0)
    py = gy[rr, cc] - np.where(roof, shift_xy[1] * h, 0.0)
    pu, pv = world.xy_to_uv(px, py)
    sun_rgb, amb_rgb = env.light()
    sun = env.sun_vector_xy()
    sun_u, sun_v = world.dir_xy_to_uv(sun[0], sun[1])
    kind = b.kind[box]
    car = (kind == KIND_CAR_BODY) | (kind == KIND_CAR_CABIN)
    colour = np.empty((box.size, 3), np.float32)

    grain = noise.sample(pu.astype(np.float32), pv.astype(np.float32), 4.0, 21.0)
    bld = kind == KIND_BUILDING
    roof_rgb = np.tile(np.array([0.66, 0.67, 0.68], np.float32), (box.size, 1))
    roof_rgb[bld] = world.buildings["roof_rgb"][b.owner[box[bld]]]
    edge = np.minimum.reduce([pu - b.u0[box], b.u1[box] - pu, pv - b.v0[box], b.v1[box] - pv])
    roof_rgb = roof_rgb * (0.86 + 0.24 * grain)[:, None]
    roof_rgb = np.where((bld & (edge < 0.45))[:, None], roof_rgb * 1.12 + 0.03, roof_rgb)
    roof_rgb = np.where((bld & (edge >= 0.45) & (edge < 0.8))[:, None], roof_rgb * 0.9, roof_rgb)
    if car.any():
        ci = b.owner[box[car]]
        paint = world.cars["rgb"][ci]
        cabin = kind[car] == KIND_CAR_CABIN
        # windshield and rear window: the cabin's ends along the car
        axis = world.cars["axis"][ci]
        bx = box[car]
        along = np.where(axis == 0, np.minimum(pu[car] - b.u0[bx], b.u1[bx] - pu[car]),
                         np.minimum(pv[car] - b.v0[bx], b.v1[bx] - pv[car]))
        glass = cabin & (along < 0.45)
        roof_rgb[car] = np.where(glass[:, None], np.float32(0.08) + 0.05 * paint, paint * np.where(cabin, 1.05, 0.95)[:, None])
    shade = np.full(box.size, sun[2], np.float32)
    on_roof = np.nonzero(roof)[0]
    if on_roof.size:
        height_view, _ = world.view_rasters(car_ids, np.asarray(hidden, np.int64))
        shade[on_roof] *= 1.0 - point_shadow(world, height_view, pu[on_roof], pv[on_roof], h[on_roof] + 0.01, env, 18)
    colour[:] = roof_rgb * (amb_rgb + sun_rgb * shade[:, None])

    wall = np.nonzero(~roof)[0]
    if wall.size:
        fac = np.tile(np.array([0.4, 0.4, 0.42], np.float32), (wall.size, 1))
        wb = box[wall]
        is_bld = b.kind[wb] == KIND_BUILDING
        fac[is_bld] = world.buildings["facade_rgb"][b.owner[wb[is_bld]]]
        is_car = car[wall]
        fac[is_car] = world.cars["rgb"][b.owner[wb[is_car]]] * 0.6
        du, dv = world.dir_xy_to_uv(shift_xy[0], shift_xy[1])
        normal_u = np.sign(du) if abs(du) > abs(dv) else 0.0
        normal_v = np.sign(dv) if abs(dv) >= abs(du) else 0.0
        lam = max(normal_u * sun_u + normal_v * sun_v, 0.0)
        z = np.clip(_lean_height(pu[wall], pv[wall], b, wb, du, dv), 0, None)
        floors = np.mod(z, 3.4) < 1.5
        fac = np.where((floors & is_bld)[:, None], fac * 0.55, fac)
        colour[wall] = fac * (amb_rgb * 0.8 + sun_rgb * lam)
    image[rr, cc] = colour


def _lean_height(pu, pv, b, box, du, dv):
    """Height on the leaned wall seen at ground point (pu, pv), from the dominant lean axis."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if abs(du) >= abs(dv):
            edge = np.where(du > 0, b.u1[box], b.u0[box])
            return np.nan_to_num((pu - edge) / du)
        edge = np.where(dv > 0, b.v1[box], b.v0[box])
        return np.nan_to_num((pv - edge) / dv)


def _draw_crowns(world, env, image, code, center_xy, size, mpp, shift_xy):
    trees = world.trees
    if len(trees["u"]) == 0:
        return
    sun_rgb, amb_rgb = env.light()
    sun = env.sun_vector_xy()
    leaves = palettes.LEAF[env.season]
    bare = env.season == "winter"
    tx, ty = world.uv_to_xy(trees["u"], trees["v"])
    box_top = world.boxes.h[np.maximum((code - 1) // 2, 0)] * (code > 0)
    order = np.argsort(trees["base"] + 2 * trees["semi_c"])
    for i in order:
        a, c = trees["radius"][i], trees["semi_c"][i]
        top = trees["base"][i] + 2 * c
        cx = (tx[i] + shift_xy[0] * (top - c) - center_xy[0]) / mpp + size / 2
        cy = (ty[i] + shift_xy[1] * (top - c) - center_xy[1]) / mpp + size / 2
        r_px = a * 1.1 / mpp
        c0, c1 = int(max(cx - r_px, 0)), int(min(cx + r_px + 1, size))
        r0, r1 = int(max(cy - r_px, 0)), int(min(cy + r_px + 1, size))
        if c0 >= c1 or r0 >= r1:
            continue
        yy, xx = np.mgrid[r0:r1, c0:c1]
        ex, ey = (xx + 0.5 - cx) * mpp / a, (yy + 0.5 - cy) * mpp / a
        rho = np.sqrt(ex ** 2 + ey ** 2)
        wx, wy = (xx * mpp).astype(np.float32), (yy * mpp).astype(np.float32)
        clump = noise.sample(wx + 13.0 * i, wy, 1.3, 14.0)
        covered = box_top[r0:r1, c0:c1] > top
        if bare:
            twigs = noise.sample(wx + 13.0 * i, wy, 0.35, 15.0)
            mask = (rho < 0.95) & (twigs > 0.55) & ~covered
            colour = leaves[int(trees["leaf"][i]) % len(leaves)] * (0.6 + 0.4 * clump)[..., None]
            alpha = 0.75
        else:
            mask = (rho < 0.8 + 0.28 * clump) & ~covered
            nz = np.sqrt(np.clip(1 - rho ** 2, 0, 1))
            lam = np.clip(ex * sun[0] + ey * sun[1] + nz * sun[2], 0, None)
            tone = trees["tone"][i] * (0.55 + 0.75 * clump)
            leaf = leaves[int(trees["leaf"][i]) % len(leaves)].astype(np.float32)
            colour = leaf * tone[..., None] * (amb_rgb * 0.8 + sun_rgb * lam[..., None] * (0.6 + 0.5 * clump[..., None]))
            alpha = 1.0
        patch = image[r0:r1, c0:c1]
        patch[mask] = patch[mask] * (1 - alpha) + colour[mask] * alpha


def degrade(image: np.ndarray, env: Environment, rng: np.random.Generator, resolution_factor: float,
            jpeg_quality: int) -> np.ndarray:
    """Grading, resolution loss and JPEG artefacts; returns (S, S, 3) uint8 RGB."""
    image = grade(image.astype(np.float32), env)
    image = np.clip(image + rng.normal(0.0, 0.008, image.shape).astype(np.float32), 0, 1)
    size = image.shape[0]
    if resolution_factor < 0.999:
        small = max(8, int(round(size * resolution_factor)))
        image = cv2.resize(cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA), (size, size),
                           interpolation=cv2.INTER_LINEAR)
    out = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()

"""Street furniture of a world: trees, lamp poles and car slots (street frame, metres)."""

from __future__ import annotations

import numpy as np

from geodistill.data.synthetic import palettes
from geodistill.data.synthetic.kinds import KIND_CAR_BODY, KIND_CAR_CABIN
from geodistill.data.synthetic.layout import LOT_BUILDING, LOT_PARK, LOT_PARKING, StreetLines

PARKING_PERIOD_M = 16.4  # stall row 5.2 m, aisle 6 m, stall row 5.2 m (the albedo draws the same lines)
STALL_WIDTH_M = 2.6


def _in_crossing(t, cross: StreetLines, extra: float) -> bool:
    index, offset = cross.nearest(np.array([t]))
    return bool(abs(offset[0]) < cross.half_width[index[0]] + cross.sidewalk[index[0]] + extra)


def _along_street(rng, lines: StreetLines, cross: StreetLines, size_m, spacing, lateral_fn, skip, extra):
    """Points along both sides of every street line: (along, across, side) triples."""
    half = size_m / 2
    out = []
    for i, pos in enumerate(lines.pos):
        if abs(pos) > half + 10:
            continue
        for side in (-1.0, 1.0):
            t = -half + rng.uniform(0, spacing[1])
            while t < half:
                if rng.random() >= skip and not _in_crossing(t, cross, extra):
                    out.append((t, pos + side * lateral_fn(i), side))
                t += rng.uniform(*spacing)
    return out


def _empty(keys):
    return {k: np.zeros(0, np.float32) for k in keys}


TREE_KEYS = ("u", "v", "radius", "semi_c", "base", "trunk_r", "leaf", "tone")


def make_trees(rng, streets_u, streets_v, lots, boxes, params, size_m, flat):
    """Street trees every 7-11 m with gaps, park trees and (suburb) yard trees."""
    if flat:
        return _empty(TREE_KEYS)
    points = []
    for lines, cross, swap in ((streets_u, streets_v, False), (streets_v, streets_u, True)):
        pts = _along_street(rng, lines, cross, size_m, (7.0, 11.0),
                            lambda i, L=lines: L.half_width[i] + 0.55 * L.sidewalk[i], params.street_tree_skip, 2.0)
        points += [(across, t) if not swap else (t, across) for t, across, _ in pts]
    for i in np.nonzero(lots.kind == LOT_PARK)[0]:
        area = (lots.u1[i] - lots.u0[i]) * (lots.v1[i] - lots.v0[i])
        for _ in range(int(area / rng.uniform(60, 140))):
            points.append((rng.uniform(lots.u0[i] + 2, lots.u1[i] - 2), rng.uniform(lots.v0[i] + 2, lots.v1[i] - 2)))
    if params.yard_trees > 0:
        footprints = np.array([r[:4] for r in boxes.rows[1:]]).reshape(-1, 4)
        for i in np.nonzero(lots.kind == LOT_BUILDING)[0]:
            for _ in range(rng.poisson(params.yard_trees)):
                pu = rng.uniform(lots.u0[i] + 2, lots.u1[i] - 2)
                pv = rng.uniform(lots.v0[i] + 2, lots.v1[i] - 2)
                clear = ((pu < footprints[:, 0] - 3) | (pu > footprints[:, 1] + 3) |
                         (pv < footprints[:, 2] - 3) | (pv > footprints[:, 3] + 3))
                if clear.all():
                    points.append((pu, pv))
    count = len(points)
    if count == 0:
        return _empty(TREE_KEYS)
    pts = np.array(points, np.float64)
    radius = rng.uniform(1.8, 4.2, count)
    return {
        "u": pts[:, 0], "v": pts[:, 1], "radius": radius, "semi_c": radius * rng.uniform(0.8, 1.2, count),
        "base": rng.uniform(2.4, 4.5, count), "trunk_r": rng.uniform(0.12, 0.25, count),
        "leaf": rng.integers(0, 4, count), "tone": rng.uniform(0.8, 1.2, count),
    }


def make_poles(rng, streets_u, streets_v, size_m, flat):
    """Lamp poles every 22-35 m along the kerbs."""
    if flat:
        return _empty(("u", "v", "height"))
    points = []
    for lines, cross, swap in ((streets_u, streets_v, False), (streets_v, streets_u, True)):
        pts = _along_street(rng, lines, cross, size_m, (22.0, 35.0), lambda i, L=lines: L.half_width[i] + 0.45,
                            0.1, 1.0)
        points += [(across, t) if not swap else (t, across) for t, across, _ in pts]
    pts = np.array(points, np.float64).reshape(-1, 2)
    return {"u": pts[:, 0], "v": pts[:, 1], "height": rng.uniform(6.0, 9.0, len(pts))}


def _add_car(rng, boxes, cars, cu, cv, axis, length, width, cell_m):
    index = len(cars["u"])
    body_h = rng.uniform(0.85, 1.05)
    cabin_h = rng.uniform(1.40, 1.55) if rng.random() < 0.75 else rng.uniform(1.6, 1.8)
    front, rear = rng.uniform(1.0, 1.3), rng.uniform(0.6, 0.9)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    la, lb = -length / 2, length / 2
    ca, cb = (la + rear, lb - front) if sign > 0 else (la + front, lb - rear)
    wa, wb = -width / 2, width / 2
    if axis == 0:
        body = boxes.add(cu + la, cu + lb, cv + wa, cv + wb, body_h, KIND_CAR_BODY, index, cell_m)
        cabin = boxes.add(cu + ca, cu + cb, cv + wa + 0.12, cv + wb - 0.12, cabin_h, KIND_CAR_CABIN, index, cell_m)
    else:
        body = boxes.add(cu + wa, cu + wb, cv + la, cv + lb, body_h, KIND_CAR_BODY, index, cell_m)
        cabin = boxes.add(cu + wa + 0.12, cu + wb - 0.12, cv + ca, cv + cb, cabin_h, KIND_CAR_CABIN, index, cell_m)
    if body < 0 or cabin < 0:
        return
    cars["u"].append(cu)
    cars["v"].append(cv)
    cars["axis"].append(axis)
    cars["body_box"].append(body)
    cars["cabin_box"].append(cabin)
    cars["rgb"].append(palettes.draw(rng, palettes.CAR, 0.04))


def make_cars(rng, streets_u, streets_v, lots, boxes, size_m, cell_m, flat):
    """Car slots along the kerbs and in parking-lot stalls; each view later draws its own subset."""
    cars = {k: [] for k in ("u", "v", "axis", "body_box", "cabin_box", "rgb")}
    if not flat:
        for lines, cross, axis in ((streets_u, streets_v, 1), (streets_v, streets_u, 0)):
            half = size_m / 2
            for i, pos in enumerate(lines.pos):
                if abs(pos) > half + 5:
                    continue
                for side in (-1.0, 1.0):
                    across = pos + side * (lines.half_width[i] - 1.15)
                    t = -half + rng.uniform(0, 6)
                    while t < half:
                        length = rng.uniform(4.2, 4.9)
                        if not _in_crossing(t, cross, 5.0):
                            cu, cv = (across, t) if axis == 1 else (t, across)
                            _add_car(rng, boxes, cars, cu, cv, axis, length, rng.uniform(1.75, 1.9), cell_m)
                        t += length + rng.uniform(1.0, 3.5)
        for i in np.nonzero(lots.kind == LOT_PARKING)[0]:
            axis = int(lots.stall_axis[i])
            a0, a1 = (lots.u0[i], lots.u1[i]) if axis == 0 else (lots.v0[i], lots.v1[i])
            b0, b1 = (lots.v0[i], lots.v1[i]) if axis == 0 else (lots.u0[i], lots.u1[i])
            for row_start in np.arange(b0, b1 - 5.2, PARKING_PERIOD_M):
                for row in (row_start, row_start + 11.2):
                    if row + 5.2 > b1:
                        continue
                    for stall in np.arange(a0 + 0.3, a1 - STALL_WIDTH_M, STALL_WIDTH_M):
                        along, depth = stall + STALL_WIDTH_M / 2, row + 2.6
                        cu, cv = (along, depth) if axis == 0 else (depth, along)
                        _add_car(rng, boxes, cars, cu, cv, 1 - axis, rng.uniform(4.2, 4.8), rng.uniform(1.75, 1.9), cell_m)
    return {
        "u": np.array(cars["u"], np.float64), "v": np.array(cars["v"], np.float64),
        "axis": np.array(cars["axis"], np.int64), "body_box": np.array(cars["body_box"], np.int64),
        "cabin_box": np.array(cars["cabin_box"], np.int64), "rgb": np.array(cars["rgb"], np.float32).reshape(-1, 3),
    }

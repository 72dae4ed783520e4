"""Street lines and lots of a world, in the street frame (u, v), metres."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geodistill.data.synthetic.kinds import GROUND_CONCRETE, GROUND_GRASS, GROUND_PARKING, GROUND_PLAZA

LOT_BUILDING, LOT_PARKING, LOT_PARK, LOT_PLAZA = 0, 1, 2, 3


@dataclass
class StreetLines:
    """Centre lines of the streets of one direction (constant u or constant v), sorted."""

    pos: np.ndarray  # (k,) centre-line coordinate, metres
    half_width: np.ndarray  # (k,) road half-width, metres
    sidewalk: np.ndarray  # (k,) sidewalk width, metres
    major: np.ndarray  # (k,) bool

    def nearest(self, coord: np.ndarray):
        """Nearest centre line of each coordinate.

        Returns:
            (index (N,) int64, signed offset coord - pos (N,)).
        """
        right = np.clip(np.searchsorted(self.pos, coord), 1, len(self.pos) - 1)
        left = right - 1
        d_left = coord - self.pos[left]
        d_right = coord - self.pos[right]
        use_right = np.abs(d_right) < np.abs(d_left)
        index = np.where(use_right, right, left)
        return index, np.where(use_right, d_right, d_left)


@dataclass
class Lots:
    """Rectangular lots inside the blocks."""

    u0: np.ndarray
    u1: np.ndarray
    v0: np.ndarray
    v1: np.ndarray
    kind: np.ndarray  # LOT_* code
    ground: np.ndarray  # ground material (kinds.GROUND_*)
    tile_m: np.ndarray  # plaza tile size
    tint: np.ndarray  # (k, 3) colour tint
    stall_axis: np.ndarray  # parking: 0 stalls along u, 1 along v


def make_street_lines(rng: np.random.Generator, size_m: float, block_m: tuple[float, float]) -> StreetLines:
    """Street centre lines covering the world plus a margin, with random block lengths and widths."""
    positions, half_widths, sidewalks, majors = [], [], [], []
    coord = -size_m / 2 - rng.uniform(0, block_m[1])
    while coord < size_m / 2 + block_m[1]:
        major = rng.random() < 0.25
        positions.append(coord)
        half_widths.append(rng.uniform(4.0, 7.0) * (1.4 if major else 1.0))
        sidewalks.append(rng.uniform(2.0, 4.5))
        majors.append(major)
        coord += rng.uniform(*block_m)
    return StreetLines(np.array(positions), np.array(half_widths), np.array(sidewalks), np.array(majors, bool))


def _split(rng, rect, max_lot, min_lot, out):
    u0, u1, v0, v1 = rect
    du, dv = u1 - u0, v1 - v0
    if max(du, dv) <= max_lot or max(du, dv) < 2 * min_lot:
        out.append(rect)
        return
    frac = rng.uniform(0.35, 0.65)
    if du >= dv:
        cut = u0 + max(min_lot, min(du - min_lot, frac * du))
        _split(rng, (u0, cut, v0, v1), max_lot, min_lot, out)
        _split(rng, (cut, u1, v0, v1), max_lot, min_lot, out)
    else:
        cut = v0 + max(min_lot, min(dv - min_lot, frac * dv))
        _split(rng, (u0, u1, v0, cut), max_lot, min_lot, out)
        _split(rng, (u0, u1, cut, v1), max_lot, min_lot, out)


def make_lots(rng, streets_u: StreetLines, streets_v: StreetLines, size_m: float, params, cell_m: float) -> Lots:
    """Split every block into lots and give each lot a use (building, parking, park, plaza)."""
    rects = []
    limit = size_m / 2 + 1
    for i in range(len(streets_u.pos) - 1):
        u0 = streets_u.pos[i] + streets_u.half_width[i] + streets_u.sidewalk[i]
        u1 = streets_u.pos[i + 1] - streets_u.half_width[i + 1] - streets_u.sidewalk[i + 1]
        for j in range(len(streets_v.pos) - 1):
            v0 = streets_v.pos[j] + streets_v.half_width[j] + streets_v.sidewalk[j]
            v1 = streets_v.pos[j + 1] - streets_v.half_width[j + 1] - streets_v.sidewalk[j + 1]
            if u1 - u0 < 6 or v1 - v0 < 6 or u1 < -limit or u0 > limit or v1 < -limit or v0 > limit:
                continue
            _split(rng, (u0, u1, v0, v1), params.max_lot_m, 9.0, rects)
    rects_arr = np.round(np.array(rects, np.float64).reshape(-1, 4) / cell_m) * cell_m
    count = len(rects_arr)
    kind = rng.choice(4, size=count, p=np.array(params.lot_probs) / sum(params.lot_probs))
    ground_of_kind = np.array([params.building_ground, GROUND_PARKING, GROUND_GRASS, GROUND_PLAZA], np.uint8)
    ground = ground_of_kind[kind]
    if params.building_ground == GROUND_CONCRETE:
        plaza_like = (kind == LOT_BUILDING) & (rng.random(count) < 0.3)
        ground = np.where(plaza_like, GROUND_PLAZA, ground).astype(np.uint8)
    return Lots(
        u0=rects_arr[:, 0], u1=rects_arr[:, 1], v0=rects_arr[:, 2], v1=rects_arr[:, 3], kind=kind,
        ground=ground, tile_m=rng.uniform(0.5, 1.4, count), tint=rng.uniform(0.85, 1.15, (count, 3)),
        stall_axis=rng.integers(0, 2, count),
    )

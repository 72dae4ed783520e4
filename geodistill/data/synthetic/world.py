"""The procedural city world: street grid, lots, buildings, trees, poles and car slots.

Frames. The generator works in metres with x east, y south (image rows) and z up, origin at the
world centre. Streets, lots and every box are axis-aligned in the *street frame* (u, v), the x/y
frame rotated by ``alpha``: ``u = cos a * x + sin a * y``, ``v = -sin a * x + cos a * y``. The world
is a square of side ``size_m`` in the street frame; its rasters (``height``, ``oid``, ``ground``,
``lot``) are indexed ``[iv, iu]`` with cell ``cell_m`` and box edges snapped to cell edges, so the
rasters describe the boxes exactly and the ray caster's first guess is always inside the true box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from geodistill.data.synthetic import palettes
from geodistill.data.synthetic.furniture import make_cars, make_poles, make_trees
from geodistill.data.synthetic.kinds import GROUND_CONCRETE, GROUND_GRASS, KIND_BUILDING, KIND_UNIT
from geodistill.data.synthetic.layout import Lots, StreetLines, make_lots, make_street_lines

GENERATOR_VERSION = "1.0.0"
STYLES = ("downtown", "midrise", "suburb")


@dataclass(frozen=True)
class StyleParams:
    """Style-dependent draws of the city layout."""

    block_m: tuple[float, float]
    height_median_m: float
    max_lot_m: float
    lot_probs: tuple[float, float, float, float]  # building, parking, park, plaza
    setback_m: tuple[float, float]
    building_ground: int
    p_glass: float
    p_shop: float
    street_tree_skip: float
    yard_trees: float


STYLE_PARAMS = {
    "downtown": StyleParams((45, 80), 28.0, 30.0, (0.80, 0.08, 0.05, 0.07), (0.0, 1.0), GROUND_CONCRETE, 0.3, 0.8, 0.45, 0.0),
    "midrise": StyleParams((50, 90), 12.0, 26.0, (0.72, 0.10, 0.10, 0.08), (0.5, 2.5), GROUND_CONCRETE, 0.12, 0.55, 0.3, 0.2),
    "suburb": StyleParams((60, 110), 6.0, 24.0, (0.68, 0.06, 0.22, 0.04), (3.0, 6.0), GROUND_GRASS, 0.0, 0.1, 0.25, 0.9),
}


@dataclass
class Boxes:
    """Axis-aligned boxes in the street frame, standing on the ground (z from 0 to ``h``). Index 0 is unused."""

    u0: np.ndarray
    u1: np.ndarray
    v0: np.ndarray
    v1: np.ndarray
    h: np.ndarray
    kind: np.ndarray
    owner: np.ndarray  # building index (buildings, units) or car index (car boxes)


@dataclass
class World:
    """A generated city world; see the module docstring for frames."""

    seed: int
    style: str
    size_m: float
    cell_m: float
    alpha_deg: float
    streets_u: StreetLines
    streets_v: StreetLines
    lots: Lots
    boxes: Boxes
    buildings: dict[str, np.ndarray]
    trees: dict[str, np.ndarray]
    poles: dict[str, np.ndarray]
    cars: dict[str, np.ndarray]
    height: np.ndarray  # (n, n) float32, static boxes only (no cars)
    oid: np.ndarray  # (n, n) int32 box index, 0 = ground
    ground: np.ndarray  # (n, n) uint8 ground material of lot interiors
    lot: np.ndarray  # (n, n) int32 lot index, -1 = street
    flat: bool = False
    cache: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return self.height.shape[0]

    @property
    def alpha_rad(self) -> float:
        return math.radians(self.alpha_deg)

    def xy_to_uv(self, x, y):
        """Raster frame (x east, y south) to street frame (u, v), metres."""
        c, s = math.cos(self.alpha_rad), math.sin(self.alpha_rad)
        return c * x + s * y, -s * x + c * y

    def uv_to_xy(self, u, v):
        """Street frame (u, v) to raster frame (x east, y south), metres."""
        c, s = math.cos(self.alpha_rad), math.sin(self.alpha_rad)
        return c * u - s * v, s * u + c * v

    def dir_xy_to_uv(self, dx, dy):
        """Rotate a direction from the raster frame into the street frame."""
        return self.xy_to_uv(dx, dy)

    def cell_index(self, u, v):
        """Raster indices (iu, iv) of street-frame points and a mask of points inside the world."""
        iu = np.floor((u + self.size_m / 2) / self.cell_m).astype(np.int64)
        iv = np.floor((v + self.size_m / 2) / self.cell_m).astype(np.int64)
        inside = (iu >= 0) & (iu < self.n) & (iv >= 0) & (iv < self.n)
        return iu, iv, inside

    def box_slices(self, index: int) -> tuple[slice, slice]:
        """Raster slices (rows, columns) covered by box ``index``."""
        b, half, cell = self.boxes, self.size_m / 2, self.cell_m
        iu0, iu1 = (int(round((b.u0[index] + half) / cell)), int(round((b.u1[index] + half) / cell)))
        iv0, iv1 = (int(round((b.v0[index] + half) / cell)), int(round((b.v1[index] + half) / cell)))
        return _clipped_slice(iv0, iv1, self.n), _clipped_slice(iu0, iu1, self.n)

    def view_rasters(self, car_ids: np.ndarray, hidden_buildings: np.ndarray | None = None):
        """Height and box-id rasters of one view: static boxes plus that view's cars.

        Args:
            car_ids: indices into ``cars`` present in the view.
            hidden_buildings: building indices absent from the view (construction sites).

        Returns:
            (height (n, n) float32, oid (n, n) int32).
        """
        height, oid = self.height.copy(), self.oid.copy()
        if hidden_buildings is not None and len(hidden_buildings):
            hidden = np.isin(self.boxes.owner, hidden_buildings) & np.isin(self.boxes.kind, (KIND_BUILDING, KIND_UNIT))
            for index in np.nonzero(hidden)[0]:
                rows, cols = self.box_slices(int(index))
                height[rows, cols] = 0.0
                oid[rows, cols] = 0
        for car in np.asarray(car_ids, dtype=np.int64):
            for index in (self.cars["body_box"][car], self.cars["cabin_box"][car]):
                rows, cols = self.box_slices(int(index))
                height[rows, cols] = self.boxes.h[index]
                oid[rows, cols] = index
        return height, oid


def _clipped_slice(start: int, stop: int, n: int) -> slice:
    return slice(min(max(start, 0), n), min(max(stop, 0), n))


def _snap(value, cell):
    return np.round(np.asarray(value, dtype=np.float64) / cell) * cell


class _BoxList:
    def __init__(self):
        self.rows = [(0.0, 0.0, 0.0, 0.0, 0.0, 0, -1)]

    def add(self, u0, u1, v0, v1, h, kind, owner, cell):
        u0, u1, v0, v1 = (float(x) for x in _snap([u0, u1, v0, v1], cell))
        if u1 - u0 < cell or v1 - v0 < cell:
            return -1
        self.rows.append((u0, u1, v0, v1, float(h), kind, owner))
        return len(self.rows) - 1

    def build(self) -> Boxes:
        a = np.array(self.rows, dtype=np.float64)
        return Boxes(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5].astype(np.int8), a[:, 6].astype(np.int64))


def draw_alpha_deg(rng: np.random.Generator) -> float:
    """Street-grid angle: 40 % axis-aligned, 40 % within +-30 degrees, 20 % any angle."""
    r = rng.random()
    if r < 0.4:
        return float(rng.choice([0.0, 90.0]))
    if r < 0.8:
        return float(rng.uniform(-30, 30))
    return float(rng.uniform(0, 180))


def generate_world(seed: int, style: str = "midrise", size_m: float = 480.0, cell_m: float = 0.25,
                   flat: bool = False) -> World:
    """Generate one city world.

    Args:
        seed: world seed; every draw goes through ``np.random.default_rng(seed)``.
        style: one of ``STYLES``.
        size_m: side of the square world in the street frame, metres.
        cell_m: raster cell, metres.
        flat: no boxes, trees, poles or cars (the flat-world geometry check).

    Returns:
        The world with its rasters filled.
    """
    if style not in STYLE_PARAMS:
        raise ValueError(f"unknown synthetic style {style!r}; expected one of {STYLES}")
    params = STYLE_PARAMS[style]
    rng = np.random.default_rng(seed)
    alpha = draw_alpha_deg(rng)
    streets_u = make_street_lines(rng, size_m, params.block_m)
    streets_v = make_street_lines(rng, size_m, params.block_m)
    lots = make_lots(rng, streets_u, streets_v, size_m, params, cell_m)
    n = int(round(size_m / cell_m))
    ground = np.zeros((n, n), np.uint8)
    lot_raster = np.full((n, n), -1, np.int32)
    half = size_m / 2
    for i in range(len(lots.kind)):
        iu0, iu1 = (int(round((lots.u0[i] + half) / cell_m)), int(round((lots.u1[i] + half) / cell_m)))
        iv0, iv1 = (int(round((lots.v0[i] + half) / cell_m)), int(round((lots.v1[i] + half) / cell_m)))
        rows, cols = _clipped_slice(iv0, iv1, n), _clipped_slice(iu0, iu1, n)
        ground[rows, cols] = lots.ground[i]
        lot_raster[rows, cols] = i

    boxes = _BoxList()
    buildings = _make_buildings(rng, lots, params, boxes, cell_m, flat)
    trees = make_trees(rng, streets_u, streets_v, lots, boxes, params, size_m, flat)
    poles = make_poles(rng, streets_u, streets_v, size_m, flat)
    cars = make_cars(rng, streets_u, streets_v, lots, boxes, size_m, cell_m, flat)
    box_array = boxes.build()

    height = np.zeros((n, n), np.float32)
    oid = np.zeros((n, n), np.int32)
    world = World(seed, style, size_m, cell_m, alpha, streets_u, streets_v, lots, box_array, buildings, trees,
                  poles, cars, height, oid, ground, lot_raster, flat)
    static = np.nonzero(np.isin(box_array.kind, (KIND_BUILDING, KIND_UNIT)))[0]
    for index in static:
        rows, cols = world.box_slices(int(index))
        height[rows, cols] = box_array.h[index]
        oid[rows, cols] = index
    return world


def _make_buildings(rng, lots: Lots, params: StyleParams, boxes: _BoxList, cell_m: float, flat: bool):
    """One box per building lot, with independent roof and facade palettes and rooftop units."""
    fields = {k: [] for k in ("box", "roof_rgb", "facade_rgb", "floor_h", "win_w", "win_sp", "win_frac",
                              "glass", "shop", "sign_rgb", "glass_rgb", "ground_floor_h", "lot")}
    building_lots = np.nonzero(lots.kind == 0)[0] if not flat else np.zeros(0, np.int64)
    for lot in building_lots:
        setback = rng.uniform(*params.setback_m)
        u0, u1 = lots.u0[lot] + setback, lots.u1[lot] - setback
        v0, v1 = lots.v0[lot] + setback, lots.v1[lot] - setback
        if u1 - u0 < 5 or v1 - v0 < 5:
            continue
        if params.building_ground == GROUND_GRASS:  # houses do not fill their lot
            w, d = min(u1 - u0, rng.uniform(8, 16)), min(v1 - v0, rng.uniform(8, 14))
            cu = u0 + w / 2 + rng.random() * max(u1 - u0 - w, 0.0)
            cv = v0 + d / 2 + rng.random() * max(v1 - v0 - d, 0.0)
            u0, u1, v0, v1 = cu - w / 2, cu + w / 2, cv - d / 2, cv + d / 2
        h = float(np.clip(params.height_median_m * math.exp(0.45 * rng.standard_normal()), 3.5, 90.0))
        index = len(fields["box"])
        box = boxes.add(u0, u1, v0, v1, h, KIND_BUILDING, index, cell_m)
        if box < 0:
            continue
        glass = rng.random() < params.p_glass and h > 15
        fields["box"].append(box)
        fields["roof_rgb"].append(palettes.draw(rng, palettes.ROOF))
        fields["facade_rgb"].append(palettes.draw(rng, palettes.FACADE))
        fields["floor_h"].append(rng.uniform(3.0, 3.9))
        fields["win_w"].append(rng.uniform(0.8, 1.8))
        fields["win_sp"].append(rng.uniform(2.4, 4.0))
        fields["win_frac"].append(rng.uniform(0.4, 0.65))
        fields["glass"].append(glass)
        fields["shop"].append(rng.random() < params.p_shop and h > 6)
        fields["sign_rgb"].append(palettes.draw(rng, palettes.SIGN))
        fields["glass_rgb"].append(palettes.draw(rng, palettes.GLASS))
        fields["ground_floor_h"].append(rng.uniform(3.8, 4.8))
        fields["lot"].append(lot)
        for _ in range(int(rng.integers(0, 4)) if h > 8 else 0):
            uw, vw = rng.uniform(1.5, 4.0), rng.uniform(1.5, 4.0)
            bu0, bu1, bv0, bv1 = boxes.rows[box][:4]
            if bu1 - bu0 < uw + 2 or bv1 - bv0 < vw + 2:
                continue
            cu, cv = rng.uniform(bu0 + 1 + uw / 2, bu1 - 1 - uw / 2), rng.uniform(bv0 + 1 + vw / 2, bv1 - 1 - vw / 2)
            boxes.add(cu - uw / 2, cu + uw / 2, cv - vw / 2, cv + vw / 2, h + rng.uniform(1.0, 2.5), KIND_UNIT, index, cell_m)
    out = {}
    for key, values in fields.items():
        if key.endswith("rgb"):
            out[key] = np.array(values, np.float32).reshape(-1, 3)
        elif key in ("glass", "shop"):
            out[key] = np.array(values, bool)
        elif key in ("box", "lot"):
            out[key] = np.array(values, np.int64)
        else:
            out[key] = np.array(values, np.float32)
    return out

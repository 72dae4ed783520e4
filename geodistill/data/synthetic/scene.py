"""One world's views: camera placement, per-view cars and construction, aerial mosaic, panoramas.

Local frame of a world: metres (east, north) from the world centre, which is the centre of the tile
grid; the generator's raster frame is (x, y) = (east, -north).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geodistill.data.synthetic.aerial import degrade, render_aerial
from geodistill.data.synthetic.environment import Environment, Tier, draw_environment, get_tier
from geodistill.data.synthetic.panorama_render import Camera, PanoramaRender, render_panorama
from geodistill.data.synthetic.world import World, generate_world

CAR_FRACTION = 0.55
CAR_CLEARANCE_M = 4.0
STATIC_CLEARANCE_M = 2.0
MIN_CAMERA_SPACING_M = 4.0


def derive_seed(*keys: int) -> int:
    """A 32-bit seed derived from integer keys with a seed-sequence derivation."""
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(1)[0])


@dataclass
class AerialView:
    """The aerial capture of a world: environment, cars, lean, degradation and mis-registration."""

    env: Environment
    car_ids: np.ndarray
    hidden: np.ndarray
    lean_deg: float
    lean_azimuth_deg: float
    resolution_factor: float
    jpeg_quality: int
    misregistration_m: tuple[float, float]  # (east, north) shift of the imagery
    seed: int

    def to_dict(self) -> dict:
        return {"environment": self.env.to_dict(), "cars": int(len(self.car_ids)),
                "hidden_buildings": [int(x) for x in self.hidden], "lean_deg": self.lean_deg,
                "lean_azimuth_deg": self.lean_azimuth_deg, "resolution_factor": self.resolution_factor,
                "jpeg_quality": self.jpeg_quality, "misregistration_m": list(self.misregistration_m), "seed": self.seed}


def is_free_spot(world: World, east: float, north: float, others=(), clearance_m: float = STATIC_CLEARANCE_M) -> bool:
    """True when a camera at (east, north) stands on open ground, clear of boxes, trees and poles."""
    u, v = world.xy_to_uv(east, -north)
    half = world.size_m / 2 - 1
    if abs(u) > half or abs(v) > half:
        return False
    r = int(math.ceil(clearance_m / world.cell_m))
    iu, iv, inside = world.cell_index(np.array([u]), np.array([v]))
    if not inside[0]:
        return False
    patch = world.height[max(iv[0] - r, 0):iv[0] + r + 1, max(iu[0] - r, 0):iu[0] + r + 1]
    if np.any(patch > 0):
        return False
    t = world.trees
    if len(t["u"]) and np.any(np.hypot(t["u"] - u, t["v"] - v) < t["radius"] + 0.5):
        return False
    p = world.poles
    if len(p["u"]) and np.any(np.hypot(p["u"] - u, p["v"] - v) < 1.0):
        return False
    return all(math.hypot(east - e, north - n) >= MIN_CAMERA_SPACING_M for e, n in others)


def _on_road(world: World, east: float, north: float) -> bool:
    u, v = world.xy_to_uv(east, -north)
    iu, du = world.streets_u.nearest(np.array([u]))
    iv, dv = world.streets_v.nearest(np.array([v]))
    return bool(abs(du[0]) < world.streets_u.half_width[iu[0]] or abs(dv[0]) < world.streets_v.half_width[iv[0]])


def place_cameras(world: World, rng: np.random.Generator, count: int, half_extent_m: float) -> list[tuple[float, float]]:
    """Camera spots (east, north) inside the square of half side ``half_extent_m``, mostly on roads.

    Cameras are placed one at a time from ``rng``, so the first k spots do not depend on ``count``.
    """
    spots: list[tuple[float, float]] = []
    for _ in range(count):
        for attempt in range(20000):
            east, north = rng.uniform(-half_extent_m, half_extent_m, 2)
            prefer_road = attempt < 5000 and rng.random() < 0.8
            if prefer_road and not _on_road(world, east, north):
                continue
            if is_free_spot(world, east, north, spots):
                spots.append((float(east), float(north)))
                break
        else:
            raise RuntimeError(f"no free camera spot in world {world.seed} ({world.style})")
    return spots


def draw_hidden(world: World, rng: np.random.Generator, tier: Tier) -> tuple[np.ndarray, np.ndarray]:
    """Buildings under construction: (missing from the aerial, missing from the ground views)."""
    count = len(world.buildings["box"])
    missing = np.nonzero(rng.random(count) < tier.p_construction)[0]
    to_aerial = rng.random(missing.size) < 0.5
    return missing[to_aerial], missing[~to_aerial]


def draw_cars(world: World, rng: np.random.Generator, tier: Tier, free_xy=None) -> np.ndarray:
    """A view's cars: about 55 % of the slots; none within 4 m of ``free_xy`` (a camera, raster frame)."""
    count = len(world.cars["u"])
    chosen = rng.random(count) < CAR_FRACTION
    if not tier.cars:
        return np.zeros(0, np.int64)
    ids = np.nonzero(chosen)[0]
    if free_xy is not None and ids.size:
        u, v = world.xy_to_uv(*free_xy)
        b = world.boxes
        body = world.cars["body_box"][ids]
        du = np.maximum.reduce([b.u0[body] - u, u - b.u1[body], np.zeros(ids.size)])
        dv = np.maximum.reduce([b.v0[body] - v, v - b.v1[body], np.zeros(ids.size)])
        ids = ids[np.hypot(du, dv) >= CAR_CLEARANCE_M]
    return ids


def draw_aerial_view(world: World, tier: Tier, seed: int, hidden: np.ndarray) -> AerialView:
    rng = np.random.default_rng(seed)
    env = draw_environment(rng, tier)
    cars = draw_cars(world, rng, tier)
    angle = rng.uniform(0, 2 * math.pi)
    radius = tier.misregistration_m * math.sqrt(rng.random())
    return AerialView(
        env=env, car_ids=cars, hidden=hidden, lean_deg=float(rng.uniform(0, tier.max_lean_deg)),
        lean_azimuth_deg=float(rng.uniform(0, 360)), resolution_factor=float(rng.uniform(*tier.resolution_loss)),
        jpeg_quality=int(rng.integers(tier.jpeg_quality[0], tier.jpeg_quality[1] + 1)),
        misregistration_m=(radius * math.cos(angle), radius * math.sin(angle)), seed=seed,
    )


def render_mosaic(world: World, view: AerialView, center_en, size_px: int, mpp: float) -> np.ndarray:
    """Degraded north-up aerial image centred on local (east, north), (size, size, 3) uint8."""
    east = center_en[0] - view.misregistration_m[0]
    north = center_en[1] - view.misregistration_m[1]
    image = render_aerial(world, view.env, (east, -north), size_px, mpp, view.car_ids, view.lean_deg,
                          view.lean_azimuth_deg, view.hidden)
    rng = np.random.default_rng(view.seed + 1)
    return degrade(image, view.env, rng, view.resolution_factor, view.jpeg_quality)


@dataclass
class GroundView:
    """One panorama's capture: camera, environment and cars."""

    camera: Camera
    env: Environment
    car_ids: np.ndarray
    seed: int

    def to_dict(self) -> dict:
        return {"environment": self.env.to_dict(), "cars": int(len(self.car_ids)), "seed": self.seed}


def draw_ground_view(world: World, tier: Tier, seed: int, east: float, north: float, aerial_env: Environment) -> GroundView:
    rng = np.random.default_rng(seed)
    env = draw_environment(rng, tier) if rng.random() < tier.p_env_differs else aerial_env
    height = float(rng.uniform(1.9, 2.6))
    roll, pitch = (float(x) for x in rng.uniform(-tier.jitter_deg, tier.jitter_deg, 2))
    camera = Camera(east, -north, height, 0.0, roll, pitch)
    cars = draw_cars(world, rng, tier, (east, -north))
    return GroundView(camera, env, cars, seed)


def render_ground(world: World, view: GroundView, size, hidden) -> PanoramaRender:
    return render_panorama(world, view.env, view.camera, view.car_ids, size, hidden, view.seed)


def render_pair(seed: int, style: str = "midrise", tier_name: str = "hard", pano_size=(512, 256), tile_px: int = 192,
                tile_mpp: float = 0.25, flat: bool = False, offset_px=(0.0, 0.0), world_size_m: float = 480.0) -> dict:
    """One camera of a fresh world with its panorama and an aerial tile (for tests and debugging).

    The tile is centred ``offset_px`` (east, south) pixels away from the camera, so the camera sits at
    continuous pixel ``(tile_px / 2 - offset_px[0], tile_px / 2 - offset_px[1])``.

    Returns:
        dict with ``world``, ``pano`` (PanoramaRender), ``tile`` ((S, S, 3) uint8), ``camera_px`` (col, row),
        ``camera_height_m``, ``tile_mpp``, ``ground`` (GroundView) and ``aerial`` (AerialView).
    """
    tier = get_tier(tier_name)
    world = generate_world(derive_seed(seed, 0), style, size_m=world_size_m, flat=flat)
    (east, north), = place_cameras(world, np.random.default_rng(derive_seed(seed, 1)), 1, 30.0)
    hidden_aerial, hidden_ground = draw_hidden(world, np.random.default_rng(derive_seed(seed, 2)), tier)
    aerial = draw_aerial_view(world, tier, derive_seed(seed, 3), hidden_aerial)
    ground = draw_ground_view(world, tier, derive_seed(seed, 4), east, north, aerial.env)
    pano = render_ground(world, ground, pano_size, hidden_ground)
    center = (east + offset_px[0] * tile_mpp, north - offset_px[1] * tile_mpp)
    tile = render_mosaic(world, aerial, center, tile_px, tile_mpp)
    return {"world": world, "pano": pano, "tile": tile, "camera_height_m": ground.camera.height_m,
            "camera_px": (tile_px / 2 - offset_px[0], tile_px / 2 - offset_px[1]), "tile_mpp": tile_mpp,
            "ground": ground, "aerial": aerial}

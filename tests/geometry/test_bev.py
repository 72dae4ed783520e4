"""Panorama -> BEV mapping: directions, metric round trip through a rendered ground plane, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from geodistill.geometry.bev import bev_sampling_grid, project_to_bev, topdown_view, topdown_view_grid
from geodistill.geometry.grid import normalized_to_uv, sample_image


def marker_pano(height: int, width: int, columns: list[int], batch: int = 1) -> torch.Tensor:
    pano = torch.zeros(batch, 1, height, width)
    pano[:, :, height // 2:, columns] = 1.0  # ground half only
    return pano


def centroid_east_north(f_bev: torch.Tensor, cell_m: float) -> tuple[float, float]:
    """Weighted centre of a (N, N) map, in metres east/north of the grid centre."""
    size = f_bev.shape[-1]
    steps = (torch.arange(size, dtype=torch.float64) + 0.5 - size / 2) * cell_m
    weight = f_bev.double() / f_bev.sum()
    return float((weight.sum(0) * steps).sum()), float((weight.sum(1) * -steps).sum())


@pytest.mark.parametrize(("columns_of", "direction"), [
    (lambda w: [w // 2 - 1, w // 2], (0.0, 1.0)),  # u = W/2: north
    (lambda w: [3 * w // 4 - 1, 3 * w // 4], (1.0, 0.0)),  # u = 3W/4: east
    (lambda w: [w // 4 - 1, w // 4], (-1.0, 0.0)),  # u = W/4: west
    (lambda w: [0, w - 1], (0.0, -1.0)),  # the seam: south
])
def test_marker_lands_in_its_direction(columns_of, direction):
    height, width = 32, 64
    f_bev, valid = project_to_bev(marker_pano(height, width, columns_of(width)), 20, 0.5, 2.0)
    assert f_bev.shape == (1, 1, 20, 20) and valid.all()
    east, north = centroid_east_north(f_bev[0, 0], 0.5)
    assert east * direction[0] + north * direction[1] > 1.0  # well away from the camera
    assert abs(east * direction[1] - north * direction[0]) < 0.05  # on the axis


def test_heading_turns_the_centre_line():
    height, width = 32, 64
    pano = marker_pano(height, width, [width // 2 - 1, width // 2])
    f_bev, _ = project_to_bev(pano, 20, 0.5, 2.0, heading_deg=90.0)  # the camera faces east
    east, north = centroid_east_north(f_bev[0, 0], 0.5)
    assert east > 1.0 and abs(north) < 0.05


def test_index_convention_puts_north_at_index_half_width():
    width = 64
    clean = normalized_to_uv(bev_sampling_grid((32, width), 4, 1.0, 2.0, "center"), (32, width))
    faithful = normalized_to_uv(bev_sampling_grid((32, width), 4, 1.0, 2.0, "index"), (32, width))
    assert torch.allclose(faithful, clean + 0.5)
    due_north = bev_sampling_grid((32, width), 4, 1.0, 2.0, "center", center_xy_m=(0.5, 0.0))
    assert normalized_to_uv(due_north, (32, width))[0, 0, 1, 0].item() == pytest.approx(width / 2)


def test_elevation_formula():
    height, width = 64, 128
    uv = normalized_to_uv(bev_sampling_grid((height, width), 2, 4.0, 2.0), (height, width))
    # Cells at (±2, ±2) m: d = 2√2, v = H (1 - atan(d/h)/π).
    expected_v = height * (1 - math.atan(2 * math.sqrt(2) / 2.0) / math.pi)
    assert torch.allclose(uv[..., 1], torch.full((1, 2, 2), expected_v), atol=1e-4)
    assert uv[0, 0, 0, 0].item() == pytest.approx(width * 3 / 8, abs=1e-3)  # north-west: azimuth -45°
    assert uv[0, 1, 1, 0].item() == pytest.approx(width * 7 / 8, abs=1e-3)  # south-east: azimuth +135°


def render_ground_panorama(texture: torch.Tensor, texture_mpp: float, camera_east_north: tuple[float, float],
                           camera_height_m: float, height: int, width: int) -> torch.Tensor:
    """Render a flat textured ground into an equirectangular panorama by inverting the BEV mapping.

    Written independently of the code under test: column u looks at bearing 360·u/W - 180 (north at
    W/2), row v at angle π·(1 - v/H) from the nadir; pixel centres at i + 0.5.
    """
    columns = torch.arange(width, dtype=torch.float64) + 0.5
    rows = torch.arange(height, dtype=torch.float64) + 0.5
    bearing = 2 * math.pi * columns / width - math.pi
    from_nadir = math.pi * (1 - rows / height)
    ground = from_nadir < math.pi / 2 - 1e-6
    distance = camera_height_m * torch.tan(from_nadir.clamp(max=math.pi / 2 - 1e-6))
    east = camera_east_north[0] + distance.view(-1, 1) * torch.sin(bearing).view(1, -1)
    north = camera_east_north[1] + distance.view(-1, 1) * torch.cos(bearing).view(1, -1)
    size = texture.shape[-1]
    uv = torch.stack([size / 2 + east / texture_mpp, size / 2 - north / texture_mpp], dim=-1)
    pano = sample_image(texture.double(), uv.unsqueeze(0)).float()  # 1,C,H,W
    return pano * ground.view(1, 1, -1, 1)


def smooth_texture(size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 1, size // 8, size // 8, generator=generator)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)


def texture_at_cells(texture: torch.Tensor, texture_mpp: float, grid_size: int, cell_m: float,
                     center_east_north: tuple[float, float]) -> torch.Tensor:
    steps = (torch.arange(grid_size, dtype=torch.float64) + 0.5 - grid_size / 2) * cell_m
    east = (center_east_north[0] + steps).view(1, -1).expand(grid_size, grid_size)
    north = (center_east_north[1] - steps).view(-1, 1).expand(grid_size, grid_size)
    size = texture.shape[-1]
    uv = torch.stack([size / 2 + east / texture_mpp, size / 2 - north / texture_mpp], dim=-1)
    return sample_image(texture.double(), uv.unsqueeze(0))[0, 0].float()


def ncc(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


TEXTURE_MPP = 0.25
CELL_M = 0.5


@pytest.fixture(scope="module")
def ground_scene():
    texture = smooth_texture(192, seed=11)  # 48 m square, features of about 2 m
    camera = (3.2, -1.7)  # metres east/north of the texture centre
    pano = render_ground_panorama(texture, TEXTURE_MPP, camera, 2.0, height=128, width=256)
    return texture, camera, pano


def test_rendered_ground_projects_back_to_the_texture(ground_scene):
    texture, camera, pano = ground_scene
    f_bev, valid = project_to_bev(pano, 24, CELL_M, 2.0)
    truth = texture_at_cells(texture, TEXTURE_MPP, 24, CELL_M, camera)
    assert valid.all()
    assert ncc(f_bev[0, 0], truth) > 0.9
    assert ncc(f_bev[0, 0], truth) > 0.99
    # What an east/west or a north/south sign error would give:
    for wrong in (f_bev[0, 0].flip(-1), f_bev[0, 0].flip(-2)):
        assert ncc(wrong, truth) < 0.6


def test_brute_force_correlation_recovers_the_camera_offset(ground_scene):
    texture, camera, pano = ground_scene
    template_cells, map_cells = 24, 64
    template = project_to_bev(pano, template_cells, CELL_M, 2.0)[0][0, 0]
    satellite = texture_at_cells(texture, TEXTURE_MPP, map_cells, CELL_M, (0.0, 0.0))
    windows = satellite.unfold(0, template_cells, 1).unfold(1, template_cells, 1)  # R,C,t,t
    windows = windows - windows.mean(dim=(-1, -2), keepdim=True)
    centred = template - template.mean()
    scores = (windows * centred).sum(dim=(-1, -2)) / (windows.norm(dim=(-1, -2)) * centred.norm())
    row, col = divmod(int(scores.argmax()), scores.shape[1])
    # Template placed at (row, col) puts the camera at east = (col - 20)·cell, north = (20 - row)·cell.
    offset = (map_cells - template_cells) / 2
    found_east, found_north = (col - offset) * CELL_M, (offset - row) * CELL_M
    assert abs(found_east - camera[0]) <= CELL_M and abs(found_north - camera[1]) <= CELL_M
    assert scores.max() > 0.9


def test_grid_centre_offset_translates_the_bev(ground_scene):
    _, _, pano = ground_scene
    full, _ = project_to_bev(pano, 24, CELL_M, 2.0)
    shifted, _ = project_to_bev(pano, 24, CELL_M, 2.0, center_xy_m=(2 * CELL_M, -3 * CELL_M))
    # Centred 2 cells east and 3 south: cell (i, j) of `shifted` is cell (i + 3, j + 2) of `full`.
    assert torch.allclose(shifted[..., :-3, :-2], full[..., 3:, 2:], atol=1e-5)


def test_feature_maps_and_resolution_independence():
    generator = torch.Generator().manual_seed(0)
    f_pano = torch.rand(2, 16, 16, 32, generator=generator)
    f_bev, valid = project_to_bev(f_pano, 8, 1.0, torch.tensor([1.5, 2.5]))
    assert f_bev.shape == (2, 16, 8, 8) and valid.shape == (2, 8, 8)
    assert torch.allclose(f_bev[1:], project_to_bev(f_pano[1:], 8, 1.0, 2.5)[0])
    grid_small = bev_sampling_grid((16, 32), 8, 1.0, 2.0)
    grid_large = bev_sampling_grid((160, 320), 8, 1.0, 2.0)
    assert torch.allclose(grid_small, grid_large)  # normalised grid: one grid for image and features


def test_per_sample_cell_size():
    f_pano = torch.rand(2, 3, 16, 32)
    f_bev, _ = project_to_bev(f_pano, 6, torch.tensor([0.5, 1.25]), 2.0)
    assert torch.allclose(f_bev[1:], project_to_bev(f_pano[1:], 6, 1.25, 2.0)[0])
    with pytest.raises(ValueError, match="batch"):
        project_to_bev(torch.rand(3, 1, 8, 16), 4, torch.tensor([1.0, 2.0]), 2.0)


def test_seam_wrapping_and_validity():
    pano = torch.ones(1, 1, 16, 32)
    wrapped, valid_wrapped = project_to_bev(pano, 8, 1.0, 2.0)
    assert torch.allclose(wrapped, torch.ones_like(wrapped)) and valid_wrapped.all()
    reference, valid_reference = project_to_bev(pano, 7, 1.0, 2.0, wrap_seam=False)
    south = reference[0, 0, 4:, 3]  # due south of the camera: bearing 180°, the seam
    assert torch.allclose(south, torch.full_like(south, 0.5))  # half a zero column blended in
    assert not valid_reference[0, 4:, 3].any()
    assert valid_reference[0, :4].all() and valid_reference[0, :, :3].all()


def test_dtypes_and_autocast():
    pano = torch.rand(1, 2, 8, 16)
    assert project_to_bev(pano.double(), 4, 1.0, 2.0)[0].dtype == torch.float64
    assert project_to_bev(pano.bfloat16(), 4, 1.0, 2.0)[0].dtype == torch.bfloat16
    assert bev_sampling_grid((8, 16), 4, 1.0, 2.0).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        f_bev, _ = project_to_bev(pano, 4, 1.0, 2.0)
    assert f_bev.dtype == torch.float32
    assert torch.allclose(f_bev, project_to_bev(pano, 4, 1.0, 2.0)[0])


def test_gradcheck_bev_sampling_float64():
    generator = torch.Generator().manual_seed(0)
    f_pano = torch.rand(2, 2, 6, 12, generator=generator, dtype=torch.float64, requires_grad=True)
    height = torch.tensor([1.7, 2.3], dtype=torch.float64, requires_grad=True)
    cell = torch.tensor([0.9, 1.1], dtype=torch.float64, requires_grad=True)

    def bev(f_pano, height, cell):
        return project_to_bev(f_pano, 5, cell, height)[0]  # odd N: one cell sits on the camera

    assert torch.autograd.gradcheck(bev, (f_pano, height, cell), eps=1e-6, atol=1e-5)


def test_gradient_is_finite_at_the_camera_cell():
    height = torch.tensor(2.0, requires_grad=True)
    cell = torch.tensor(1.0, requires_grad=True)
    grid = bev_sampling_grid((8, 16), 3, cell, height)
    grid.sum().backward()
    assert torch.isfinite(height.grad) and torch.isfinite(cell.grad)


def test_topdown_view_is_north_up_east_right():
    height, width, size = 32, 64, 32
    north = topdown_view(marker_pano(height, width, [width // 2 - 1, width // 2]), size)
    east = topdown_view(marker_pano(height, width, [3 * width // 4 - 1, 3 * width // 4]), size)
    north_east, north_north = centroid_east_north(north[0, 0], 1.0)
    east_east, east_north = centroid_east_north(east[0, 0], 1.0)
    assert north_north > 3 and abs(north_east) < 0.1
    assert east_east > 3 and abs(east_north) < 0.1


def test_topdown_view_focal_length():
    size, fov_deg = 512, 170.0
    focal = 256 / math.tan(math.radians(85))
    assert focal == pytest.approx(22.4, abs=0.05)
    uv = normalized_to_uv(topdown_view_grid((320, 640), size, fov_deg, dtype=torch.float64), (320, 640))
    # The corner pixel's ray: radius √2·255.5 px from the centre, angle atan(ρ/f) from the nadir.
    from_nadir = math.atan(math.sqrt(2) * 255.5 / focal)
    assert uv[0, 0, 0, 1].item() == pytest.approx(320 * (1 - from_nadir / math.pi), abs=1e-6)
    with pytest.raises(ValueError, match="fov_deg"):
        topdown_view_grid((8, 16), 4, 180.0)

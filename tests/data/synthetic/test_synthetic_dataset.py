"""The VIGOR-layout writer: labels, GPS, positives, splits, resuming, and the project's loader/checker."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from geodistill.data.synthetic import generate_dataset
from geodistill.data.synthetic.generate import CITIES
from geodistill.data.synthetic.writer import (
    SPLIT_DIR, delta_from_pixel, label_line, parse_label_line, pixel_from_delta, sidecar_path,
)
from geodistill.geometry.frames import latlon_to_xy, meters_per_pixel_at

CITY_LIST = ("NewYork", "Chicago")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    summary = generate_dataset(root, panos_per_city=3, seed=7, pano_size=(128, 64), tier="hard",
                               cities=CITY_LIST, progress=False, tile_size=64)
    return root, summary


def _records(root: Path, city: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / city / "panorama").glob("*.json"))]


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix != ".json":
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_layout_and_counts(dataset):
    root, summary = dataset
    assert summary["panoramas"] == 6 and set(summary["cities"]) == set(CITY_LIST)
    for city in CITY_LIST:
        split = root / SPLIT_DIR / city
        names = {p.name for p in split.iterdir()}
        assert names == {"satellite_list.txt", "pano_label_balanced__corrected.txt",
                         "same_area_balanced_train__corrected.txt", "same_area_balanced_test__corrected.txt"}
        lines = (split / "pano_label_balanced__corrected.txt").read_text().splitlines()
        assert len(lines) == 3 and all(len(line.split()) == 13 for line in lines)
        train = (split / "same_area_balanced_train__corrected.txt").read_text().splitlines()
        test = (split / "same_area_balanced_test__corrected.txt").read_text().splitlines()
        assert sorted(train + test) == sorted(lines) and not set(train) & set(test)
        tiles = (split / "satellite_list.txt").read_text().split()
        for line in lines:
            tokens = line.split()
            assert (root / city / "panorama" / tokens[0]).is_file()
            assert all(name in tiles and (root / city / "satellite" / name).is_file() for name in tokens[1::3])
        meta = json.loads((root / city / "metadata.json").read_text())
        assert meta["meters_per_pixel"] == CITIES[city].meters_per_pixel and meta["tier"] == "hard"
        assert meta["generator_version"]


def test_label_round_trip_to_pixels_and_metres(dataset):
    root, _ = dataset
    for city in CITY_LIST:
        mpp = CITIES[city].meters_per_pixel
        for record in _records(root, city):
            pano, tiles = parse_label_line(record["label_line"])
            assert pano == record["pano_name"] and tiles[0][0] == record["positive_tile"]
            col, row = pixel_from_delta(tiles[0][1], tiles[0][2])
            assert col == pytest.approx(record["camera_col"], abs=1e-4)
            assert row == pytest.approx(record["camera_row"], abs=1e-4)
            east, north = (col - 320) * mpp, (320 - row) * mpp
            assert [east, north] == pytest.approx(record["xy_gt_m"], abs=1e-4)
            # at another tile size the same deltas scale: row = H/2 + drow * H / 640
            col_small, row_small = pixel_from_delta(tiles[0][1], tiles[0][2], 64)
            assert (col_small, row_small) == pytest.approx((col / 10, row / 10))


def test_sign_convention_on_a_hand_made_label():
    assert delta_from_pixel(col=349.0, row=343.0) == (23.0, -29.0)  # anchors.md worked example
    line = label_line("a,1.0,2.0,.jpg", [("satellite_1.0_2.0.png", 23.0, -29.0)] * 4)
    assert pixel_from_delta(*parse_label_line(line)[1][0][1:]) == (349.0, 343.0)


def test_gps_in_names_agrees_with_labels_within_a_pixel(dataset):
    from geodistill.data.vigor import parse_pano_name, parse_sat_name

    root, _ = dataset
    for city in CITY_LIST:
        for record in _records(root, city):
            _, lat, lon = parse_pano_name(record["pano_name"])
            for tile in record["tiles"]:
                tile_ll = np.array(parse_sat_name(tile["name"]), np.float64)
                for mpp in (CITIES[city].meters_per_pixel, float(meters_per_pixel_at(tile_ll[0], 20))):
                    east, north = latlon_to_xy(np.array([lat, lon], np.float64), tile_ll)
                    col, row = 320 + east / mpp, 320 - north / mpp
                    assert math.hypot(col - tile["col"], row - tile["row"]) < 1.0


def test_positive_first_in_central_quarter_and_semi_positives_cover(dataset):
    root, _ = dataset
    for city in CITY_LIST:
        for record in _records(root, city):
            deltas = [(t["delta_row"], t["delta_col"]) for t in record["tiles"]]
            assert max(abs(d) for d in deltas[0]) <= 160.0
            assert all(max(abs(d) for d in pair) < 320.0 for pair in deltas)
            assert len({t["name"] for t in record["tiles"]}) == 4
            assert record["heading_deg"] == 0.0 and 1.9 <= record["camera_height_m"] <= 2.6


def test_tiles_are_shared_and_on_a_half_tile_grid(dataset):
    from geodistill.data.vigor import parse_sat_name

    root, _ = dataset
    for city in CITY_LIST:
        names = (root / SPLIT_DIR / city / "satellite_list.txt").read_text().split()
        lines = (root / SPLIT_DIR / city / "pano_label_balanced__corrected.txt").read_text().splitlines()
        assert len(names) < 4 * len(lines)  # panoramas of a world share tiles
        ref = np.array(parse_sat_name(names[0]))
        half = 320 * CITIES[city].meters_per_pixel
        for name in names:
            offset = latlon_to_xy(np.array(parse_sat_name(name)), ref) / half
            assert np.allclose(offset, np.round(offset), atol=0.01)


def test_resume_skips_finished_samples_and_is_deterministic(dataset, tmp_path):
    root, _ = dataset
    before = _digest(root)
    again = generate_dataset(root, panos_per_city=3, seed=7, pano_size=(128, 64), tier="hard", cities=CITY_LIST,
                             progress=False, tile_size=64)
    assert again["rendered"] == 0 and again["reused"] == 6
    assert _digest(root) == before
    fresh = tmp_path / "fresh"
    generate_dataset(fresh, panos_per_city=3, seed=7, pano_size=(128, 64), tier="hard", cities=("Chicago",),
                     progress=False, tile_size=64)
    for name in ("panorama", "satellite"):
        mine = {p.name: p.read_bytes() for p in (fresh / "Chicago" / name).glob("*.[jp][pn]g")}
        theirs = {p.name: p.read_bytes() for p in (root / "Chicago" / name).glob("*.[jp][pn]g")}
        assert mine == theirs


def test_other_settings_in_the_same_folder_are_refused(dataset):
    from geodistill.errors import DataError

    root, _ = dataset
    with pytest.raises(DataError, match="other settings"):
        generate_dataset(root, panos_per_city=3, seed=8, pano_size=(128, 64), cities=CITY_LIST, progress=False,
                         tile_size=64)


def test_bad_arguments_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="2:1"):
        generate_dataset(tmp_path, pano_size=(100, 64), progress=False)
    with pytest.raises(ValueError, match="tier"):
        generate_dataset(tmp_path, tier="extreme", progress=False)
    with pytest.raises(ValueError, match="cities"):
        generate_dataset(tmp_path, cities=("Paris",), progress=False)


def test_project_checker_and_loader_accept_the_output(dataset):
    from geodistill.data.checker import check_vigor_root
    from geodistill.data.vigor import city_meters_per_pixel

    root, _ = dataset
    report = check_vigor_root(root)
    assert report.ok, report.summary()
    for city in CITY_LIST:
        assert city_meters_per_pixel(root, city) == CITIES[city].meters_per_pixel
    assert all(sidecar_path(p).is_file() for p in (root / "NewYork" / "panorama").glob("*.jpg"))


def test_vigor_loader_reads_ground_truth_within_a_pixel(dataset):
    from geodistill import keys
    from geodistill.data.vigor import VigorDataset

    root, _ = dataset
    data = VigorDataset(root, area="cross", split="test", pano_height=32, sat_size=64)
    assert len(data) == 3
    sidecars = {r["pano_name"]: r for r in _records(root, "Chicago")}
    for i in range(len(data)):
        sample = data[i]
        record = sidecars[sample[keys.PANO_NAME]]
        expected = np.array([record["camera_col"], record["camera_row"]]) * 64 / 640
        assert np.abs(sample[keys.UV_GT].numpy() - expected).max() * 10 < 1.0
        assert float(sample[keys.CAMERA_HEIGHT_M]) == pytest.approx(record["camera_height_m"], abs=1e-5)

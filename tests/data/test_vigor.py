"""The VIGOR loader: names, labels, sign convention, splits, m/px, sample dicts and bad files."""

from __future__ import annotations

import logging
import math
import shutil

import numpy as np
import pytest
import torch

from geodistill import keys
from geodistill.data.collate import collate_samples
from geodistill.data.vigor import (
    VigorDataset,
    city_meters_per_pixel,
    find_split_dir,
    parse_label_line,
    parse_pano_name,
    parse_sat_name,
    read_label_file,
    train_val_indices,
)
from geodistill.errors import DataError
from geodistill.geometry.frames import meters_per_pixel_at, uv_to_xy, vigor_delta_to_uv, xy_to_latlon

CHICAGO_LINE = (
    "L-1poX8YZAmBZVLMqBu-4w,41.877949,-87.689396,.jpg "
    "satellite_41.877971796211014_-87.68943505304125.png 23 -29 "
    "satellite_41.87821663596044_-87.68943505304125.png 338.0 -29.0 "
    "satellite_41.877971796211014_-87.68899491573838.png 23.0 291.5 "
    "satellite_41.87821663596044_-87.68899491573838.png 338.0 291.5"
)


def test_parse_pano_name_keeps_dashes_and_negative_coordinates():
    pano_id, lat, lon = parse_pano_name("L-1poX8YZAmBZVLMqBu-4w,41.877949,-87.689396,.jpg")
    assert (pano_id, lat, lon) == ("L-1poX8YZAmBZVLMqBu-4w", 41.877949, -87.689396)
    assert parse_pano_name("/data/x/a_b-c_-d,-33.45,-70.66,.jpg") == ("a_b-c_-d", -33.45, -70.66)


def test_parse_sat_name_is_float64_exact():
    lat, lon = parse_sat_name("satellite_41.877971796211014_-87.68943505304125.png")
    assert lat == float("41.877971796211014") and lon == float("-87.68943505304125")
    assert parse_sat_name("satellite_-33.5_-70.25.png") == (-33.5, -70.25)


@pytest.mark.parametrize("name", ["abc.jpg", "abc,41.8,.jpg", "abc,north,-87.6,.jpg", "abc,95.0,10.0,.jpg"])
def test_bad_pano_names_are_refused(name):
    with pytest.raises(DataError, match="panorama name"):
        parse_pano_name(name)


@pytest.mark.parametrize("name", ["satellite_41.8.png", "tile_41.8_-87.6.png", "satellite_41.8_-87.6.tif"])
def test_bad_sat_names_are_refused(name):
    with pytest.raises(DataError, match="satellite name"):
        parse_sat_name(name)


def test_label_sign_convention_on_the_worked_example():
    line = parse_label_line(CHICAGO_LINE)
    assert line.pano_name.startswith("L-1poX8YZAmBZVLMqBu-4w") and line.deltas[0] == (23.0, -29.0)
    uv = vigor_delta_to_uv(line.deltas[0][0], line.deltas[0][1], 640)
    assert np.allclose(uv, [349.0, 343.0])  # col = 320 - Δcol, row = 320 + Δrow
    east, north = uv_to_xy(uv, 640, 0.111262)
    assert east == pytest.approx(3.23, abs=0.01) and north == pytest.approx(-2.56, abs=0.01)  # east, south


@pytest.mark.parametrize("text, match", [
    (CHICAGO_LINE.rsplit(" ", 1)[0], "13"),
    (CHICAGO_LINE.replace(" 23 -29 ", " 23 west "), "not numbers"),
    (CHICAGO_LINE.replace("satellite_41.877971796211014_-87.68899491573838.png", "tile.png"), "satellite name"),
])
def test_bad_label_lines_are_refused(text, match):
    with pytest.raises(DataError, match=match):
        parse_label_line(text)


def test_label_file_counts_records_and_names_bad_line(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text(f"{CHICAGO_LINE}\n\n{CHICAGO_LINE}")  # blank line, no trailing newline
    assert len(read_label_file(path)) == 2
    path.write_text(f"{CHICAGO_LINE}\nbroken line\n")
    with pytest.raises(DataError, match=r"labels.txt:2: "):
        read_label_file(path)


def test_ground_truth_matches_gps_geometry(fake_vigor):
    size = 64
    dataset = VigorDataset(fake_vigor.root, "same", "all", pano_height=16, sat_size=size, include_semi_positives=True)
    assert len(dataset) == 4 * len(fake_vigor.cameras)
    for index in range(len(dataset)):
        sample = dataset[index]
        camera = fake_vigor.cameras[sample[keys.PANO_NAME]]
        mpp_640 = fake_vigor.meters_per_pixel[camera.city]
        assert sample[keys.METERS_PER_PIXEL].item() == pytest.approx(mpp_640 * 640 / size, rel=2e-3)
        # the tile-centre GPS plus the label offset lands on the panorama's GPS to within a pixel
        latlon = xy_to_latlon(sample[keys.XY_GT].double(), sample[keys.LATLON_SAT])
        error_m = torch.linalg.norm(torch.tensor([
            (latlon[0] - camera.lat) * 111_320.0,
            (latlon[1] - camera.lon) * 111_320.0 * math.cos(math.radians(camera.lat)),
        ])).item()
        assert error_m < mpp_640
        delta_row, delta_col = camera.deltas[camera.sat_names.index(sample[keys.SAT_NAME])]
        expected_uv = [size / 2 - delta_col * size / 640, size / 2 + delta_row * size / 640]
        assert sample[keys.UV_GT].tolist() == pytest.approx(expected_uv, abs=1e-4)
        assert sample[keys.LATLON_GT].tolist() == pytest.approx([camera.lat, camera.lon], abs=1e-12)


def test_sample_has_every_key_with_documented_types(fake_vigor):
    sample = VigorDataset(fake_vigor.root, "cross", "test", pano_height=16, sat_size=48)[0]
    assert set(keys.SAMPLE_KEYS) <= set(sample)
    assert sample[keys.PANO].shape == (3, 16, 32) and sample[keys.SAT].shape == (3, 48, 48)
    for name in (keys.PANO, keys.SAT):
        assert sample[name].dtype == torch.float32 and 0.0 <= sample[name].min() and sample[name].max() <= 1.0
    assert sample[keys.LATLON_GT].dtype == torch.float64 and sample[keys.LATLON_SAT].dtype == torch.float64
    assert sample[keys.FOV_MASK].dtype == torch.bool and bool(sample[keys.FOV_MASK].all())
    assert sample[keys.HEADING_GT].item() == 0.0 and bool(sample[keys.HAS_GT])
    assert sample[keys.CITY] == "Chicago" and sample[keys.CAMERA_HEIGHT_M].item() == 2.0


def test_camera_height_comes_from_the_sidecar(fake_vigor):
    dataset = VigorDataset(fake_vigor.root, "same", "all", pano_height=16, sat_size=32)
    heights = {dataset[i][keys.PANO_NAME]: dataset[i][keys.CAMERA_HEIGHT_M].item() for i in range(len(dataset))}
    first = next(iter(fake_vigor.cameras))
    assert heights.pop(first) == pytest.approx(2.4)
    assert set(heights.values()) == {2.0}


def test_same_and_cross_area_splits(fake_vigor):
    def cities(area, split):
        dataset = VigorDataset(fake_vigor.root, area, split, pano_height=16, sat_size=32, val_fraction=0.25)
        return {record.city for record in dataset.records}, {record.pano_name for record in dataset.records}

    assert cities("cross", "train")[0] == {"NewYork"} and cities("cross", "val")[0] == {"NewYork"}
    assert cities("cross", "test")[0] == {"Chicago"}
    assert cities("same", "train")[0] == {"NewYork", "Chicago"} == cities("same", "test")[0]
    for area in ("same", "cross"):
        train, val, test = (cities(area, split)[1] for split in ("train", "val", "test"))
        assert not (train & val) and not (train & test) and not (val & test)
        assert train | val | test == cities(area, "all")[1]


def test_train_val_split_is_seeded_80_20_and_disjoint():
    train, val = train_val_indices(100, 0.2, seed=2023)
    assert len(train) == 80 and len(val) == 20 and not set(train) & set(val)
    assert sorted(train + val) == list(range(100))
    assert (train, val) == train_val_indices(100, 0.2, seed=2023)
    assert val != train_val_indices(100, 0.2, seed=7)[1]


def test_dataset_exposes_its_split_indices(fake_vigor):
    dataset = VigorDataset(fake_vigor.root, "cross", "val", pano_height=16, sat_size=32, split_seed=5)
    state = dataset.split_state()
    assert dataset.line_indices == state["val"] and len(state["train"]) + len(state["val"]) == 6
    assert state == VigorDataset(fake_vigor.root, "cross", "train", pano_height=16, sat_size=32, split_seed=5).split_state()


def test_split_folder_names_and_optional_suffix(fake_vigor):
    root = fake_vigor.root
    assert find_split_dir(root).name == "splits__corrected"
    (root / "splits__corrected").rename(root / "splits")
    for path in (root / "splits").rglob("*__corrected.txt"):
        path.rename(path.with_name(path.name.replace("__corrected", "")))
    assert len(VigorDataset(root, "cross", "test", pano_height=16, sat_size=32)) == 6
    shutil.copytree(root / "splits", root / "splits_new")
    assert find_split_dir(root).name == "splits_new"
    shutil.rmtree(root / "splits")
    shutil.rmtree(root / "splits_new")
    with pytest.raises(DataError, match="no split folder"):
        VigorDataset(root, "cross", "test")


def test_meters_per_pixel_from_metadata_table_or_latitude(fake_vigor):
    root = fake_vigor.root
    assert city_meters_per_pixel(root, "NewYork") == pytest.approx(fake_vigor.meters_per_pixel["NewYork"], rel=1e-12)
    assert city_meters_per_pixel(root, "Chicago") == 0.111262
    assert city_meters_per_pixel(root, "Elsewhere", latitude_deg=47.6) == pytest.approx(float(meters_per_pixel_at(47.6, 20)))
    (root / "Chicago").rename(root / "Springfield")
    lat = parse_sat_name(next((root / "Springfield" / "satellite").iterdir()).name)[0]
    assert city_meters_per_pixel(root, "Springfield") == pytest.approx(float(meters_per_pixel_at(lat, 20)))
    (root / "NewYork" / "metadata.json").write_text("{not json")
    with pytest.raises(DataError, match="metadata.json"):
        city_meters_per_pixel(root, "NewYork")


def test_truncated_image_names_the_file_or_is_skipped(fake_vigor, caplog):
    dataset = VigorDataset(fake_vigor.root, "cross", "test", pano_height=16, sat_size=32)
    broken = dataset.records[0].pano_path
    broken.write_bytes(broken.read_bytes()[:200])
    with pytest.raises(DataError, match=broken.name.replace("+", r"\+")):
        dataset[0]
    skipping = VigorDataset(fake_vigor.root, "cross", "test", pano_height=16, sat_size=32, skip_bad_images=True)
    with caplog.at_level(logging.WARNING, logger="geodistill.data.vigor"):
        sample = skipping[0]
    assert sample[keys.PANO_NAME] != broken.name and "skipping sample 0" in caplog.text


def test_missing_images_are_reported_or_skipped(fake_vigor):
    record = VigorDataset(fake_vigor.root, "cross", "test", pano_height=16, sat_size=32).records[2]
    record.sat_path.unlink()
    with pytest.raises(DataError, match="missing"):
        VigorDataset(fake_vigor.root, "cross", "test", pano_height=16, sat_size=32)
    kept = VigorDataset(fake_vigor.root, "cross", "test", pano_height=16, sat_size=32, skip_bad_images=True)
    assert 0 < len(kept) < 6 and all(r.sat_name != record.sat_name for r in kept.records)


def test_non_2to1_panorama_is_refused(fake_vigor):
    from PIL import Image

    dataset = VigorDataset(fake_vigor.root, "cross", "test", pano_height=16, sat_size=32)
    Image.new("RGB", (60, 40)).save(dataset.records[0].pano_path, format="JPEG")
    with pytest.raises(DataError, match="2:1"):
        dataset[0]


def test_collated_batch_and_tile_names(fake_vigor):
    dataset = VigorDataset(fake_vigor.root, "same", "all", pano_height=16, sat_size=32)
    batch = collate_samples([dataset[0], dataset[1], dataset[2]])
    assert batch[keys.PANO].shape == (3, 3, 16, 32) and batch[keys.LATLON_GT].dtype == torch.float64
    assert batch[keys.CITY] == ["NewYork"] * 3 and batch[keys.INDEX] == [0, 1, 2]
    assert dataset.tile_names(0)[0] == dataset.records[0].sat_name and len(dataset.tile_names(0)) == 4


def test_bundled_samples_are_listed_and_loaded(fake_vigor, monkeypatch, tmp_path):
    from geodistill.data.samples import list_samples, load_sample, samples_root

    monkeypatch.setenv("GEODISTILL_ASSETS", str(tmp_path / "assets"))
    assert list_samples() == []
    with pytest.raises(DataError, match="no bundled samples"):
        load_sample("anything")
    shutil.copytree(fake_vigor.root, samples_root())
    names = list_samples()
    assert len(names) == len(fake_vigor.cameras) and names[0].startswith("NewYork/x-0_Ab-0_q,")
    first = next(iter(fake_vigor.cameras.values()))
    sample = load_sample(names[0], pano_height=16, sat_size=32)
    assert sample[keys.PANO_NAME] == first.pano_name and sample[keys.SIDECAR]["camera_height_m"] == 2.4
    assert bool(sample[keys.HAS_GT]) and sample[keys.SAT].shape == (3, 32, 32)
    by_id = load_sample("x-1_Ab-2_q", pano_height=16, sat_size=32)
    assert by_id[keys.CITY] == "Chicago" and keys.SIDECAR not in by_id
    with pytest.raises(DataError, match="no bundled sample named"):
        load_sample("Atlantis/nothing")


def test_sixteen_bit_and_grayscale_tiles_load_as_rgb(fake_vigor):
    from PIL import Image

    dataset = VigorDataset(fake_vigor.root, "cross", "test", pano_height=16, sat_size=32)
    record = dataset.records[0]
    Image.fromarray(np.full((64, 64), 65535 // 2, np.uint16)).save(record.sat_path)
    Image.fromarray(np.full((32, 64), 51, np.uint8)).save(record.pano_path, format="JPEG", quality=100)
    sample = dataset[0]
    assert sample[keys.SAT].shape == (3, 32, 32) and sample[keys.SAT].mean().item() == pytest.approx(0.5, abs=1e-3)
    assert sample[keys.PANO].shape == (3, 16, 32) and sample[keys.PANO].mean().item() == pytest.approx(0.2, abs=0.01)

"""``make-dataset``: labels from GPS on a half-tile grid, headings turned north, bad panoramas skipped, and the
result read by check-data, evaluate (with its GPS warning) and train as they are."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from geodistill.area.dataset import make_dataset
from geodistill.area.utm_orthophoto import ground_distance_m
from geodistill.area.exif import read_heading
from geodistill.area.synthetic import ORTHOPHOTO_FILE, PANORAMA_DIR, TRUTH_FILE, generate_area, read_ground_truth
from geodistill.cli import main
from geodistill.config import load_config
from geodistill.data.checker import check_vigor_root
from geodistill.data.images import open_image
from geodistill.data.label_source import AREA_DATASET_FILE, GPS_PRIORS
from geodistill.data.vigor import VigorDataset, parse_pano_name, parse_sat_name
from geodistill.engine.loop import train
from geodistill.errors import DataError
from geodistill.geometry.frames import latlon_to_xy
from geodistill import settings

from tests.area.conftest import TINY_AREA, TINY_TILE_MPP
from tests.area.helpers import red_centroid, write_xyz


def test_labels_are_the_gps_positions_on_a_half_tile_grid(tiny_area, tiny_area_dataset):
    area, _ = tiny_area
    root, summary = tiny_area_dataset
    assert summary["panoramas"] == TINY_AREA["panos"] and not summary["skipped"]
    assert json.loads((root / AREA_DATASET_FILE).read_text())["labels"] == GPS_PRIORS
    report = check_vigor_root(root, images="full")
    assert report.ok and "same" in report.usable_areas, report.summary()
    truth = {row["name"].rsplit(".", 1)[0]: row for row in read_ground_truth(area / TRUTH_FILE)}
    dataset = VigorDataset(root, area="same", split="all", pano_height=32, sat_size=64)
    assert len(dataset) == TINY_AREA["panos"]
    for record in dataset.records:
        pano_id, lat, lon = parse_pano_name(record.pano_name)
        row = truth[pano_id]
        assert ground_distance_m(lat, lon, row["prior_lat"], row["prior_lon"]) < 0.01
        assert max(abs(d) for d in record.delta) <= 160.0 + 1e-6  # the positive: central quarter
        for name, (delta_row, delta_col) in zip(record.sat_names, record.deltas):
            centre = np.array(parse_sat_name(name))
            label = np.array([-delta_col, -delta_row]) * TINY_TILE_MPP  # metres east/north of the tile centre
            gps = latlon_to_xy(np.array([lat, lon]), centre)
            true = latlon_to_xy(np.array([row["true_lat"], row["true_lon"]]), centre)
            assert np.allclose(label, gps, atol=0.01)
            assert float(np.hypot(*(label - true))) == pytest.approx(row["prior_error_m"], abs=0.05)
    half_grid = {round(float(c) * 1e4) for r in dataset.records for n in r.sat_names
                 for c in latlon_to_xy(np.array(parse_sat_name(n)), np.array(parse_sat_name(dataset.records[0].sat_name)))
                 / (320 * TINY_TILE_MPP)}
    assert all(value % 10_000 in (0, 9_999, 1) for value in half_grid)  # tile centres half a tile apart


def test_known_headings_turn_panoramas_north_and_bad_panoramas_are_skipped(tiny_area, tmp_path):
    area, _ = tiny_area
    truth = read_ground_truth(area / TRUTH_FILE)
    panos = tmp_path / "panos"
    panos.mkdir()
    for row in truth[:3]:
        shutil.copy(area / PANORAMA_DIR / row["name"], panos / row["name"])
    open_image(area / PANORAMA_DIR / truth[3]["name"]).save(panos / "no_gps.jpg")  # EXIF left behind
    (panos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    open_image(area / PANORAMA_DIR / truth[0]["name"]).crop((0, 0, 128, 128)).save(panos / "square.jpg")
    lines = ["name,lat,lon,heading"]
    lines += [f"{r['name']},{r['prior_lat']:.9f},{r['prior_lon']:.9f},{90.0 if i == 0 else ''}" for i, r in enumerate(truth[:2])]
    lines += [f"{name},{truth[0]['prior_lat']},{truth[0]['prior_lon']}" for name in ("broken.jpg", "square.jpg")]
    (tmp_path / "gps.csv").write_text("\n".join(lines) + "\n")
    summary = make_dataset(area / ORTHOPHOTO_FILE, panos, tmp_path / "ds", gps_csv=tmp_path / "gps.csv",
                           meters_per_pixel=TINY_TILE_MPP, tile_px=64, progress=False)
    reasons = {entry["name"]: entry["reason"] for entry in summary["skipped"]}
    assert set(reasons) == {"no_gps.jpg", "broken.jpg", "square.jpg"}
    assert "no GPS" in reasons["no_gps.jpg"] and "2:1" in reasons["square.jpg"]
    assert summary["panoramas"] == 3  # truth[2] is not in the CSV: its EXIF GPS is used
    written = {parse_pano_name(p.name)[0]: p for p in (tmp_path / "ds" / "Area" / "panorama").glob("*.jpg")}
    source = np.asarray(open_image(panos / truth[0]["name"]).convert("RGB"), np.float32)
    turned = np.asarray(open_image(written[truth[0]["name"].rsplit(".", 1)[0]]).convert("RGB"), np.float32)
    width = source.shape[1]
    assert np.abs(turned - np.roll(source, width // 4, axis=1)).mean() < 3.0  # heading 90: north moves W/4 right
    assert np.abs(turned - source).mean() > 10.0
    same = written[truth[1]["name"].rsplit(".", 1)[0]]
    assert same.read_bytes() == (panos / truth[1]["name"]).read_bytes()  # no heading: copied as it is


def test_a_gps_position_outside_the_orthophoto_is_skipped_and_none_usable_is_an_error(tiny_area, tmp_path):
    area, _ = tiny_area
    name = read_ground_truth(area / TRUTH_FILE)[0]["name"]
    (tmp_path / "panos").mkdir()
    shutil.copy(area / PANORAMA_DIR / name, tmp_path / "panos" / name)
    (tmp_path / "gps.csv").write_text(f"{name},10.0,10.0\n")
    with pytest.raises(DataError, match="no usable panorama .*outside it"):
        make_dataset(area / ORTHOPHOTO_FILE, tmp_path / "panos", tmp_path / "ds", gps_csv=tmp_path / "gps.csv",
                     meters_per_pixel=TINY_TILE_MPP, progress=False)


def test_check_data_evaluate_and_weak_training_read_it(tiny_area_dataset, tiny_checkpoint, tmp_path, capsys):
    root, _ = tiny_area_dataset
    assert main(["check-data", str(root)]) == 0
    assert "verdict: OK" in capsys.readouterr().out
    checkpoint = tiny_checkpoint(tmp_path / "tiny_weak")
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(root), "--area", "same", "--split", "all",
                 "--no-progress", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "measured against GPS" in captured.err and "labels=GPS" in captured.out
    config = load_config(settings.REPO_ROOT / "training" / "configs" / "tiny.yaml",
                         [f"data.root={root}", "data.synthetic.generate=false", "train.epochs=1",
                          "train.max_steps_per_epoch=1", "train.batch_size=2", "data.val_fraction=0.25"])
    result = train(config, run_dir=tmp_path / "weak_run")
    assert result.status == "done" and result.step == 1 and math.isfinite(result.best_metric)


def test_random_headings_are_tagged_and_make_dataset_turns_them_back_north(tiny_area, tiny_area_dataset, tmp_path):
    north_area, _ = tiny_area
    north_root, _ = tiny_area_dataset
    area = tmp_path / "turned"
    generate_area(area, **{**TINY_AREA, "heading": "random"})
    truth = read_ground_truth(area / TRUTH_FILE)
    assert len({round(row["true_heading_deg"]) for row in truth}) == len(truth)
    for row in truth:
        assert read_heading(area / PANORAMA_DIR / row["name"]) == pytest.approx(row["true_heading_deg"], abs=0.01)
    root = tmp_path / "ds"
    make_dataset(area / ORTHOPHOTO_FILE, area / PANORAMA_DIR, root, meters_per_pixel=TINY_TILE_MPP, tile_px=64,
                 progress=False)
    north = {parse_pano_name(p.name)[0]: p for p in (north_root / "Area" / "panorama").glob("*.jpg")}
    for path in (root / "Area" / "panorama").glob("*.jpg"):
        turned = np.asarray(open_image(path).convert("RGB"), np.float32)
        reference = np.asarray(open_image(north[parse_pano_name(path.name)[0]]).convert("RGB"), np.float32)
        width = turned.shape[1]
        differences = [np.abs(turned - np.roll(reference, shift, axis=1)).mean() for shift in range(width)]
        best = int(np.argmin(differences))  # the same view, north at the centre column: no turn left over
        assert min(best, width - best) <= 1, (path.name, best)


def test_an_xyz_tile_folder_works_and_tiles_put_the_gps_position_at_the_label(tiny_area, tmp_path):
    area, _ = tiny_area
    name = read_ground_truth(area / TRUTH_FILE)[0]["name"]
    centre = (41.0, -72.5)
    write_xyz(tmp_path / "tiles", centre, 19, centre)
    (tmp_path / "panos").mkdir()
    shutil.copy(area / PANORAMA_DIR / name, tmp_path / "panos" / name)
    (tmp_path / "gps.csv").write_text(f"{name},{centre[0]},{centre[1]}\n")  # the marker is at the GPS position
    summary = make_dataset(tmp_path / "tiles", tmp_path / "panos", tmp_path / "ds", gps_csv=tmp_path / "gps.csv",
                           meters_per_pixel=TINY_TILE_MPP, tile_px=128, progress=False)
    assert summary["panoramas"] == 1 and summary["tiles"] == 4
    record = VigorDataset(tmp_path / "ds", area="same", split="all", pano_height=32, sat_size=64).records[0]
    for sat_name, (delta_row, delta_col) in zip(record.sat_names, record.deltas):
        tile = np.asarray(open_image(tmp_path / "ds" / "Area" / "satellite" / sat_name).convert("RGB"))
        u, v = red_centroid(tile)
        assert math.hypot(u - (64 - delta_col * 0.2), v - (64 + delta_row * 0.2)) < 1.0  # 128 px = 640 x 0.2

"""``refine`` end to end on a generated area: outputs, flags, resumability and every bad input of the issue."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pyproj import Geod, Transformer

from geodistill.area.bench import BENCH_CENTRE
from geodistill.area.exif import save_jpeg_with_gps
from geodistill.area.orthophoto import open_orthophoto
from geodistill.area.refine import mass_radius, refine_area
from geodistill.area.results import ResultsError, journal_path, read_results
from geodistill.cli import main

from .helpers import write_geotiff, write_xyz

GEOD = Geod(ellps="WGS84")


def add_bad_panoramas(panos):
    save_jpeg_with_gps(Image.new("RGB", (256, 128)), panos / "x_outside.jpg", BENCH_CENTRE[0] + 0.01, BENCH_CENTRE[1])
    Image.new("RGB", (256, 128)).save(panos / "y_nogps.jpg")
    (panos / "y_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    save_jpeg_with_gps(Image.new("RGB", (200, 128)), panos / "z_square.jpg", *BENCH_CENTRE)


def test_refine_writes_every_panorama_with_its_flags(bench_area, tiny_localizer, tmp_path):
    ortho_path, panos = bench_area
    add_bad_panoramas(panos)
    out = tmp_path / "refined.geojson"
    summary = refine_area(ortho_path, panos, out, localizer=tiny_localizer, batch_size=3)
    assert (summary.total, summary.refined, summary.outside, summary.skipped) == (8, 4, 1, 3)
    document = json.loads(out.read_text())
    assert document["type"] == "FeatureCollection" and len(document["features"]) == 8
    records = {r["name"]: r for r in read_results(out)}
    assert records["x_outside.jpg"]["outside_orthophoto"] and records["x_outside.jpg"]["status"] == "outside"
    assert "outside the orthophoto area.tif" in records["x_outside.jpg"]["reason"]
    assert "no GPS position" in records["y_nogps.jpg"]["reason"]
    assert "y_corrupt.jpg: not a readable image" in records["y_corrupt.jpg"]["reason"]
    assert "2:1" in records["z_square.jpg"]["reason"]
    with open_orthophoto(ortho_path) as ortho:
        for feature in document["features"]:
            props = feature["properties"]
            if props["status"] != "refined":
                continue
            start, end = feature["geometry"]["coordinates"]
            assert start == [props["prior_lon"], props["prior_lat"]]  # RFC 7946: lon, lat
            assert end == [props["refined_lon"], props["refined_lat"]]
            _, _, distance = GEOD.inv(*start, *end)
            assert distance == pytest.approx(props["shift_m"], abs=1e-3)
            assert distance <= summary.plan.search_radius_m + 1.0
            assert (props["refined_x"], props["refined_y"]) == pytest.approx(
                ortho.to_native(props["refined_lat"], props["refined_lon"]), abs=1e-6)
            assert props["crs"] == "EPSG:32610" and props["coverage"] == 1.0
            assert props["heading_source"] == "prior" and 0 <= props["heading_deg"] < 360
            assert props["uncertainty_m"] > 0 and props["confidence_text"]


def test_csv_output_and_a_narrow_prior_keeps_the_gps_position(bench_area, tiny_localizer, tmp_path):
    ortho_path, panos = bench_area
    out = tmp_path / "refined.csv"
    refine_area(ortho_path, panos, out, localizer=tiny_localizer, prior_sigma_m=0.3)
    records = read_results(out)
    assert out.read_text().startswith("name,status,reason,prior_lat")
    assert len(records) == 4 and all(r["status"] == "refined" for r in records)
    assert max(r["shift_m"] for r in records) < 1.0  # a 0.3 m prior outweighs an untrained model


def test_interrupted_run_leaves_a_valid_file_and_a_rerun_completes(bench_area, tiny_localizer, tmp_path):
    ortho_path, panos = bench_area
    out = tmp_path / "refined.geojson"
    polls = []
    first = refine_area(ortho_path, panos, out, localizer=tiny_localizer, batch_size=2,
                        should_stop=lambda: polls.append(1) or len(polls) > 1)
    assert first.stopped and first.refined == 2
    kept = {r["name"]: r for r in read_results(out)}
    assert len(kept) == 2
    seen = []
    second = refine_area(ortho_path, panos, out, localizer=tiny_localizer, batch_size=2,
                         progress=lambda done, total: seen.append((done, total)))
    assert not second.stopped and second.already_done == 2 and second.refined == 4
    assert seen == [(4, 4)]
    again = {r["name"]: r for r in read_results(out)}
    assert all(again[name] == record for name, record in kept.items())
    with pytest.raises(ResultsError, match=r"prior_sigma_m.*changed.*--restart"):
        refine_area(ortho_path, panos, out, localizer=tiny_localizer, prior_sigma_m=3.0)
    restarted = refine_area(ortho_path, panos, out, localizer=tiny_localizer, prior_sigma_m=3.0, restart=True)
    assert restarted.already_done == 0 and restarted.refined == 4


def test_ctrl_c_mid_run_still_writes_what_is_done(bench_area, tiny_localizer, tmp_path):
    ortho_path, panos = bench_area
    out = tmp_path / "refined.csv"

    def interrupt_after_first_batch(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        refine_area(ortho_path, panos, out, localizer=tiny_localizer, batch_size=3,
                    progress=interrupt_after_first_batch)
    assert [r["status"] for r in read_results(out)] == ["refined"] * 3


def test_a_journal_line_cut_by_a_crash_is_done_again(bench_area, tiny_localizer, tmp_path):
    ortho_path, panos = bench_area
    out = tmp_path / "refined.geojson"
    refine_area(ortho_path, panos, out, localizer=tiny_localizer)
    journal = journal_path(out)
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    summary = refine_area(ortho_path, panos, out, localizer=tiny_localizer)
    assert summary.already_done == 3 and summary.refined == 4
    parsed = []
    for line in journal.read_text().splitlines():
        try:
            parsed.append(json.loads(line))
        except ValueError:
            parsed.append(None)
    assert parsed.count(None) == 1 and parsed[-1]["name"] == json.loads(lines[-1])["name"]  # the cut line, redone


def test_truncated_jpeg_among_good_ones_is_skipped_then_retried_once_fixed(bench_area, tiny_localizer, tmp_path):
    ortho_path, panos = bench_area
    good = panos / "pano_0000.jpg"
    intact = good.read_bytes()
    good.write_bytes(intact[: len(intact) // 2])  # header intact, image data cut: fails only when decoded
    out = tmp_path / "refined.geojson"
    first = refine_area(ortho_path, panos, out, localizer=tiny_localizer)
    records = {r["name"]: r for r in read_results(out)}
    assert first.refined == 3 and records["pano_0000.jpg"]["status"] == "skipped"
    assert "pano_0000.jpg" in records["pano_0000.jpg"]["reason"] and "truncated" in records["pano_0000.jpg"]["reason"]
    good.write_bytes(intact)
    second = refine_area(ortho_path, panos, out, localizer=tiny_localizer)
    assert second.already_done == 3 and second.refined == 4


def test_xyz_tile_folder_as_orthophoto(bench_area, tiny_localizer, tmp_path):
    _, panos = bench_area
    tiles = write_xyz(tmp_path / "tiles", BENCH_CENTRE, 19, BENCH_CENTRE, radius_tiles=2)
    summary = refine_area(tiles, panos, tmp_path / "refined.csv", localizer=tiny_localizer)
    assert summary.refined == 4
    for record in read_results(tmp_path / "refined.csv"):
        assert record["crs"] == "EPSG:3857" and record["coverage"] == 1.0
        x, _ = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(record["prior_lon"],
                                                                                        record["prior_lat"])
        assert record["prior_x"] == pytest.approx(x, abs=1e-3)


def test_mass_radius():
    prob = np.zeros((11, 11))
    prob[5, 5] = 0.5
    prob[5, 8] = 0.5
    assert mass_radius(prob, np.array([5.5, 5.5]), 2.0, 0.4) == 0.0
    assert mass_radius(prob, np.array([5.5, 5.5]), 2.0, 0.9) == pytest.approx(6.0)


def run_cli(capsys, *args):
    code = main(["refine", "--no-progress", *map(str, args)])
    return code, capsys.readouterr()


def test_cli_refines_and_reports(bench_area, tmp_path, tiny_checkpoint, capsys):
    ortho_path, panos = bench_area
    checkpoint = tiny_checkpoint(tmp_path / "ckpt")
    code, output = run_cli(capsys, "--ortho", ortho_path, "--panos", panos, "--out", tmp_path / "r.csv",
                           "--checkpoint", checkpoint, "--no-orientation")
    assert code == 0 and "4 refined" in output.out
    assert len(read_results(tmp_path / "r.csv")) == 4


def test_cli_bad_geotiff_is_one_line_and_exit_2(bench_area, tmp_path, tiny_checkpoint, capsys):
    _, panos = bench_area
    plain = write_geotiff(tmp_path / "plain.tif", None, BENCH_CENTRE, 64, (1.0, 1.0))
    code, output = run_cli(capsys, "--ortho", plain, "--panos", panos, "--out", tmp_path / "r.geojson",
                           "--checkpoint", tiny_checkpoint(tmp_path / "ckpt"), "--no-orientation")
    assert code == 2
    assert output.err.strip().count("\n") == 0 and "plain.tif" in output.err and "coordinate reference" in output.err
    assert "Traceback" not in output.err


def test_cli_too_coarse_orthophoto(bench_area, tmp_path, tiny_checkpoint, capsys):
    _, panos = bench_area
    coarse = write_geotiff(tmp_path / "coarse.tif", "EPSG:32610", BENCH_CENTRE, 64, (5.0, 5.0))
    code, output = run_cli(capsys, "--ortho", coarse, "--panos", panos, "--out", tmp_path / "r.geojson",
                           "--checkpoint", tiny_checkpoint(tmp_path / "ckpt"), "--no-orientation")
    assert code == 2 and "coarse.tif" in output.err and "5.00 m/px" in output.err and "at most" in output.err


def test_bad_output_suffix(bench_area, tiny_localizer, tmp_path):
    ortho_path, panos = bench_area
    with pytest.raises(ResultsError, match="refined.txt.*geojson"):
        refine_area(ortho_path, panos, tmp_path / "refined.txt", localizer=tiny_localizer)

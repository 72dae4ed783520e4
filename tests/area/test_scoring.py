"""Scoring refine's output against a synthetic area's ground truth."""

from __future__ import annotations

import pytest

from geodistill.area.local_frame import LocalFrame
from geodistill.area.scoring import score_refined


def test_errors_recalls_and_improved_share_against_the_truth():
    frame = LocalFrame(41.31, -72.60)

    def latlon(east, north):
        return tuple(float(v) for v in frame.to_latlon(east, north))

    truth, records = [], []
    cases = {"a": (0.5, 10.0), "b": (2.0, 6.0), "c": (4.0, 12.0), "d": (9.0, 5.0)}  # refined error, prior error
    for index, (name, (refined, prior)) in enumerate(cases.items()):
        east = 30.0 * index
        true_lat, true_lon = latlon(east, 0.0)
        prior_lat, prior_lon = latlon(east, prior)
        refined_lat, refined_lon = latlon(east + refined, 0.0)
        truth.append({"name": name, "true_lat": true_lat, "true_lon": true_lon, "prior_lat": prior_lat,
                      "prior_lon": prior_lon})
        records.append({"name": name, "status": "refined", "refined_lat": refined_lat, "refined_lon": refined_lon})
    truth.append({"name": "e", "true_lat": 0.0, "true_lon": 0.0, "prior_lat": 0.0, "prior_lon": 0.0})
    records.append({"name": "e", "status": "outside", "refined_lat": None, "refined_lon": None})
    truth.append({"name": "f", "true_lat": 0.0, "true_lon": 0.0, "prior_lat": 0.0, "prior_lon": 0.0})
    score = score_refined(truth, records)
    assert score["refined"]["n"] == 4 and score["not_refined"] == ["e", "f"]
    assert score["refined"]["mean_m"] == pytest.approx(15.5 / 4, abs=1e-3)
    assert score["refined"]["median_m"] == pytest.approx(3.0, abs=1e-3)
    assert score["prior"]["median_m"] == pytest.approx(8.0, abs=1e-3)
    assert (score["refined"]["recall_1m"], score["refined"]["recall_3m"], score["refined"]["recall_5m"]) == (0.25, 0.5, 0.75)
    assert score["improved_share"] == 0.75  # d got worse

"""The map of a refine run: lines coloured by confidence, popups escaped, the drawing cap said on the map."""

from __future__ import annotations

import html

import pytest

from geodistill.area.results import empty_record
from geodistill.viz import area_map as area


def _refined(name: str, confidence: float | None, low: bool = False) -> dict:
    record = empty_record(name, "refined", prior_lat=47.0, prior_lon=8.0, refined_lat=47.00005, refined_lon=8.00002,
                          shift_m=5.9, confidence=confidence, confidence_text="70 % chance within 5 m",
                          heading_deg=12.0, heading_source="model")
    record["low_confidence"] = low
    return record


def test_lines_are_coloured_by_confidence_and_popups_are_text():
    records = [_refined("<b>x</b>.jpg", 0.9), _refined("low.jpg", 0.1, low=True),
               empty_record("far.jpg", "outside", prior_lat=47.001, prior_lon=8.0,
                            reason="far.jpg: its GPS position lies outside the orthophoto a.tif")]
    records[2]["outside_orthophoto"] = True
    page = html.unescape(area.area_map(records))
    assert page.count("area-line") == 2 and page.count("area-point") == 3
    assert area.confidence_colour(0.9) != area.confidence_colour(0.1)
    assert area.confidence_colour(0.9) in page and area.confidence_colour(0.1) in page
    assert "&lt;b&gt;x&lt;/b&gt;.jpg" in page and "<b>x</b>.jpg" not in page.replace('"<b>x</b>.jpg"', "")
    assert '"dashArray": "6 4"' in page                                     # low confidence: dashed
    assert "moved 5.9 m from its GPS position" in page and "flags: outside orthophoto" in page
    assert area.popup_lines(records[1])[-1] == "flags: low confidence"


def test_the_cap_is_said_on_the_map_and_nothing_placed_is_an_error(monkeypatch):
    monkeypatch.setattr(area, "MAX_DRAWN", 2)
    page = html.unescape(area.area_map([_refined(f"p{i}.jpg", 0.5) for i in range(3)]))
    assert page.count("area-line") == 2 and "2 of 3 panoramas drawn" in page
    with pytest.raises(ValueError, match="no panorama has a position"):
        area.area_map([empty_record("a.jpg", "skipped", reason="no GPS")])

import html
import re

import numpy as np
import pytest

from geodistill.geometry.frames import latlon_to_xy
from geodistill.viz.webmap import (
    LEAFLET_VERSION, MapMarker, leaflet_dir, localization_map, message_map, tile_bounds,
)

CENTER = np.array([40.7580, -73.9855])


def _page(map_html: str) -> str:
    match = re.search(r'srcdoc="([^"]*)"', map_html)
    assert match, "the map is an iframe with srcdoc"
    return html.unescape(match.group(1))


def test_vendored_leaflet_and_its_licence_are_present():
    folder = leaflet_dir()
    assert (folder / "leaflet.js").stat().st_size > 100_000
    assert (folder / "leaflet.css").is_file()
    assert "BSD 2-Clause" in (folder / "LICENSE").read_text()


def test_tile_bounds_span_the_tile():
    bounds = tile_bounds(CENTER, 640, 0.1)
    (south, west), (north, east) = bounds
    assert south < CENTER[0] < north and west < CENTER[1] < east
    corner_xy = latlon_to_xy(np.array([north, east]), CENTER)
    np.testing.assert_allclose(corner_xy, [32.0, 32.0], atol=1e-3)  # 320 px * 0.1 m east and north


def test_map_is_offline_with_overlays_and_markers():
    sat = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    prob = np.zeros((64, 64), np.float32)
    prob[10, 20] = 1.0
    page = _page(localization_map(sat, CENTER, 0.5, prob, uv_pred=(20.5, 10.5), uv_gt=(30.0, 30.0), heading_deg=45.0))
    # Leaflet is inlined, and nothing is fetched from the network
    assert f"version=\"{LEAFLET_VERSION}\"" in page or f'"{LEAFLET_VERSION}"' in page
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=[\"']?https?:", page)
    assert "tile.openstreetmap" not in page
    assert page.count("L.imageOverlay(") == 2          # satellite tile + heatmap
    assert page.count("data:image/png;base64,") == 2
    assert page.count("L.circleMarker(") == 2          # prediction + ground truth
    assert "L.polyline(" in page                        # heading
    assert "L.control.layers(" in page and "geodistill-latlon" in page


def test_online_tiles_are_optional_and_off_by_default():
    sat = np.zeros((16, 16, 3), np.uint8)
    page = _page(localization_map(sat, CENTER, 1.0, online_tiles=True))
    assert "tile.openstreetmap" in page
    assert page.count("L.imageOverlay(") == 1  # no heatmap given


@pytest.mark.parametrize("latlon, mpp", [((np.nan, np.nan), 0.5), ((40.0, -74.0), 0.0)])
def test_map_refuses_missing_georeference(latlon, mpp):
    with pytest.raises(ValueError, match="the map needs"):
        localization_map(np.zeros((8, 8, 3), np.uint8), latlon, mpp)


def test_message_map_escapes_text():
    assert "&lt;b&gt;" in message_map("<b>")


def test_heatmaps_are_exclusive_map_layers_and_markers_have_popups_and_a_legend():
    sat = np.zeros((64, 64, 3), np.uint8)
    prob = np.ones((64, 64), np.float32)
    markers = [MapMarker("student prediction", (20.0, 10.0), 30.0, ["error 2.50 m", "confidence 0.123"]),
               MapMarker("teacher <b>", (40.0, 40.0), None, ["error 1.00 m"], (10, 132, 255))]
    page = _page(localization_map(sat, CENTER, 0.5, uv_gt=(30.0, 30.0), markers=markers,
                                  heatmaps={"student heatmap": prob, "teacher heatmap": prob}))
    # both heatmaps are base layers of Leaflet's switcher (switching them keeps the zoom), in their own pane
    base_layers = re.search(r"base_layers\s*:\s*\{(.*?)\}", page, re.S).group(1)
    assert "student heatmap" in base_layers and "teacher heatmap" in base_layers
    assert page.count('"pane": "heatmaps"') == 2 and '"pane": "tile"' in page
    assert len(re.findall(r"circle_marker_\w+\.bindPopup\(", page)) == 3  # two predictions and the truth
    assert "$(" not in page.split("</script>", 1)[1]  # no jQuery after the inlined Leaflet (none is loaded)
    assert "error 2.50 m" in page and "confidence 0.123" in page and "teacher &lt;b&gt;" in page
    assert "geodistill-legend" in page and "ground truth" in page and "low → high" in page
    assert "geodistill-map-click" in page                    # a click is posted to the app

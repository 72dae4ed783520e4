"""An interactive map that works offline: folium with Leaflet 1.9.4 inlined from ``assets/leaflet``.

folium's default map loads Leaflet, jQuery and Bootstrap from CDNs and a tile layer from the
internet, so offline it is blank. Here every map clears those lists, inlines Leaflet's JS and CSS,
uses no tile layer (``tiles=None``) and shows the satellite tile itself as a georeferenced
``ImageOverlay`` (a PNG data URL), with the heatmap as a second, toggleable overlay, circle markers
for the prediction and the ground truth (the default marker icon is an external image), a heading
line and a lat/lon read-out. Online base tiles are an optional overlay, hidden until switched on.

The result is an ``<iframe srcdoc=...>`` string for ``gr.HTML``.
"""

from __future__ import annotations

import functools
import html
import math
from pathlib import Path

import numpy as np

from geodistill import settings
from geodistill.geometry.frames import uv_to_latlon
from geodistill.viz.heatmap import GROUND_TRUTH_COLOUR, HEADING_COLOUR, PREDICTION_COLOUR, probability_alpha
from geodistill.viz.images import colormap_rgb, png_data_url, resize_map, to_rgb_uint8

LEAFLET_VERSION = "1.9.4"
ONLINE_TILES_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
ONLINE_TILES_ATTRIBUTION = "&copy; OpenStreetMap contributors"
MAP_CLASS = "geodistill-map"


def leaflet_dir() -> Path:
    """Folder of the vendored Leaflet files (``leaflet.js``, ``leaflet.css``, ``LICENSE``)."""
    return settings.assets_dir() / "leaflet"


@functools.lru_cache(maxsize=4)
def _leaflet_sources(folder: str) -> tuple[str, str]:
    root = Path(folder)
    try:
        script = (root / "leaflet.js").read_text(encoding="utf-8")
        style = (root / "leaflet.css").read_text(encoding="utf-8")
    except OSError as error:
        raise FileNotFoundError(
            f"Leaflet {LEAFLET_VERSION} is missing from {root} ({error.strerror}); the offline map needs "
            "leaflet.js and leaflet.css there (npm pack leaflet@1.9.4, then copy dist/leaflet.js and dist/leaflet.css)"
        ) from error
    # The source-map comment would make developer tools request a file that is not there.
    script = "\n".join(line for line in script.splitlines() if not line.startswith("//# sourceMappingURL"))
    # "</" inside an inline script must not close the tag early.
    return script.replace("</script", "<\\/script"), style


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def tile_bounds(latlon_center, size_px: int, meters_per_pixel: float) -> list[list[float]]:
    """Leaflet bounds ``[[south, west], [north, east]]`` of a north-up tile of ``size_px`` pixels."""
    north_west = np.asarray(uv_to_latlon(np.array([0.0, 0.0]), np.asarray(latlon_center, dtype=np.float64),
                                         size_px, meters_per_pixel), dtype=np.float64)
    south_east = np.asarray(uv_to_latlon(np.array([float(size_px), float(size_px)]),
                                         np.asarray(latlon_center, dtype=np.float64), size_px, meters_per_pixel),
                            dtype=np.float64)
    return [[float(south_east[0]), float(north_west[1])], [float(north_west[0]), float(south_east[1])]]


def heatmap_rgba(prob: np.ndarray, size: int, opacity: float = 0.75, cmap: str = "magma") -> np.ndarray:
    """A probability map as an RGBA image whose alpha grows with probability, (size, size, 4) uint8."""
    prob = resize_map(prob, size, size)
    rgb = colormap_rgb(prob, cmap, vmin=0.0)
    alpha = (probability_alpha(prob, opacity) * 255 + 0.5).astype(np.uint8)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def localization_map(sat, latlon_center, meters_per_pixel: float, prob: np.ndarray | None = None,
                     uv_pred=None, uv_gt=None, heading_deg: float | None = None, online_tiles: bool = False,
                     height_px: int = 520, heatmap_opacity: float = 0.75, heatmap_label: str = "heatmap") -> str:
    """The offline Leaflet map of one localization, as an iframe HTML string.

    Args:
        sat: satellite tile, (3, S, S) tensor or (S, S, 3) array, north-up.
        latlon_center: (2,) tile-centre latitude and longitude in degrees (float64).
        meters_per_pixel: metres per pixel of ``sat`` as given.
        prob: (H, W) probability map over the tile, any resolution, or None.
        uv_pred: (2,) predicted pixel on ``sat``, or None.
        uv_gt: (2,) true pixel on ``sat``, or None.
        heading_deg: predicted heading (degrees clockwise from north), drawn from the prediction.
        online_tiles: add OpenStreetMap tiles as an overlay that is off until the user ticks it.
        height_px: height of the iframe.
        heatmap_opacity: opacity of the heatmap at its peak.
        heatmap_label: name of the heatmap layer in the layer switcher.

    Returns:
        ``<iframe class="geodistill-map" srcdoc="...">`` HTML.
    """
    import folium
    from branca.element import Element

    latlon_center = np.asarray(latlon_center, dtype=np.float64)
    if latlon_center.shape != (2,) or not np.all(np.isfinite(latlon_center)):
        raise ValueError("the map needs the tile-centre latitude and longitude (this sample is not georeferenced)")
    if not (math.isfinite(meters_per_pixel) and meters_per_pixel > 0):
        raise ValueError(f"the map needs a positive metres per pixel, got {meters_per_pixel}")
    tile = to_rgb_uint8(sat)
    size = tile.shape[0]
    bounds = tile_bounds(latlon_center, size, meters_per_pixel)

    def latlon_of(uv) -> list[float]:
        return [float(c) for c in uv_to_latlon(np.asarray(uv, dtype=np.float64), latlon_center, size,
                                               meters_per_pixel)]

    web_map = folium.Map(location=latlon_center.tolist(), tiles=None, zoom_start=19, max_zoom=24,
                         zoom_snap=0.25, control_scale=True, prefer_canvas=False)
    web_map.default_js = []
    web_map.default_css = []
    script, style = _leaflet_sources(str(leaflet_dir()))
    header = web_map.get_root().header
    header.add_child(Element(f"<style>{style}</style>"), name="leaflet_css_inline")
    header.add_child(Element(f"<script>{script}</script>"), name="leaflet_js_inline")

    if online_tiles:
        folium.TileLayer(ONLINE_TILES_URL, attr=ONLINE_TILES_ATTRIBUTION, name="online base map (needs network)",
                         overlay=True, show=False, max_native_zoom=19, max_zoom=24).add_to(web_map)
    folium.raster_layers.ImageOverlay(png_data_url(tile), bounds=bounds, name="satellite tile",
                                      overlay=True, control=True, interactive=False).add_to(web_map)
    if prob is not None:
        overlay = heatmap_rgba(prob, min(size, 512), heatmap_opacity)
        folium.raster_layers.ImageOverlay(png_data_url(overlay), bounds=bounds, name=heatmap_label,
                                          overlay=True, control=True).add_to(web_map)

    markers = folium.FeatureGroup(name="markers", overlay=True, control=True).add_to(web_map)
    readout = ""
    if uv_gt is not None and np.all(np.isfinite(np.asarray(uv_gt, dtype=np.float64))):
        latlon_gt = latlon_of(uv_gt)
        folium.CircleMarker(latlon_gt, radius=6, color="#ffffff", weight=2, fill=True, fill_opacity=1.0,
                            fill_color=_hex(GROUND_TRUTH_COLOUR),
                            tooltip=f"ground truth {latlon_gt[0]:.7f}, {latlon_gt[1]:.7f}").add_to(markers)
    if uv_pred is not None:
        latlon_pred = latlon_of(uv_pred)
        if heading_deg is not None and math.isfinite(heading_deg):
            length_px = size / 8
            heading_rad = math.radians(heading_deg)
            tip = np.asarray(uv_pred, dtype=np.float64) + length_px * np.array([math.sin(heading_rad),
                                                                               -math.cos(heading_rad)])
            folium.PolyLine([latlon_pred, latlon_of(tip)], color=_hex(HEADING_COLOUR), weight=4,
                            tooltip=f"heading {heading_deg:.1f}°").add_to(markers)
        folium.CircleMarker(latlon_pred, radius=8, color=_hex(PREDICTION_COLOUR), weight=3, fill=True,
                            fill_opacity=0.35, tooltip=f"prediction {latlon_pred[0]:.7f}, {latlon_pred[1]:.7f}"
                            ).add_to(markers)
        readout = f"prediction {latlon_pred[0]:.7f}, {latlon_pred[1]:.7f}"
    _latlon_readout(readout).add_to(web_map)
    folium.LayerControl(collapsed=False).add_to(web_map)
    web_map.fit_bounds(bounds)

    page = web_map.get_root().render()
    return (f'<iframe class="{MAP_CLASS}" title="localization map" srcdoc="{html.escape(page, quote=True)}" '
            f'style="width:100%;height:{int(height_px)}px;border:0;" sandbox="allow-scripts"></iframe>')


def message_map(text: str, height_px: int = 520) -> str:
    """A placeholder panel with a message, shown where a map cannot be drawn."""
    return (f'<div class="{MAP_CLASS}-message" style="height:{int(height_px)}px;display:flex;align-items:center;'
            f'justify-content:center;border:1px dashed #999;border-radius:8px;color:#666;padding:1em;">'
            f"{html.escape(text)}</div>")


_READOUT_TEMPLATE = """
    {% macro script(this, kwargs) %}
    (function() {
        var map = {{ this._parent.get_name() }};
        var idle = {{ this.default_text|tojson }};
        var control = L.control({position: "bottomleft"});
        var box;
        control.onAdd = function() {
            box = L.DomUtil.create("div", "geodistill-latlon");
            box.style.cssText = "background:rgba(255,255,255,0.85);padding:2px 6px;" +
                "font:12px monospace;border-radius:4px;";
            box.textContent = idle || "move the pointer for lat/lon";
            return box;
        };
        control.addTo(map);
        map.on("mousemove", function(e) {
            box.textContent = "lat " + e.latlng.lat.toFixed(7) + ", lon " + e.latlng.lng.toFixed(7);
        });
        map.on("mouseout", function() { box.textContent = idle || ""; });
    })();
    {% endmacro %}
"""


def _latlon_readout(default_text: str):
    """A Leaflet control showing the pointer's lat/lon, and ``default_text`` while the pointer is away."""
    from branca.element import MacroElement
    from folium.template import Template

    element = MacroElement()
    element._name = "LatLonReadout"
    element._template = Template(_READOUT_TEMPLATE)
    element.default_text = default_text
    return element

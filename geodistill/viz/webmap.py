"""An interactive map that works offline: folium with Leaflet 1.9.4 inlined from ``assets/leaflet``.

folium's default map loads Leaflet, jQuery and Bootstrap from CDNs and a tile layer from the
internet, so offline it is blank. Here every map clears those lists, inlines Leaflet's JS and CSS,
uses no tile layer (``tiles=None``) and shows the satellite tile itself as a georeferenced
``ImageOverlay`` (a PNG data URL), with the heatmaps as exclusive layers of Leaflet's own switcher (switching
keeps the zoom), circle markers for the predictions and the ground truth (the default marker icon is an
external image) with popups bound in plain Leaflet (folium's need jQuery), a legend, a heading line and a
lat/lon read-out; a click is posted to the parent page. Online base tiles are an optional overlay, hidden
until switched on.

The result is an ``<iframe srcdoc=...>`` string for ``gr.HTML``.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
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
TILE_PANE, HEATMAP_PANE = "tile", "heatmaps"


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


def offline_map(location, online_tiles: bool = False, zoom_start: int = 19):
    """A folium map with Leaflet inlined and no tile layer (CDN lists cleared), with the panes that keep the drawing
    order whatever is switched: tile (:data:`TILE_PANE`), heatmap, then markers and lines (overlayPane, 400).
    ``online_tiles`` adds OpenStreetMap tiles as an overlay that is off until the user ticks it."""
    import folium
    from branca.element import Element

    web_map = folium.Map(location=list(location), tiles=None, zoom_start=zoom_start, max_zoom=24,
                         zoom_snap=0.25, control_scale=True, prefer_canvas=False)
    web_map.default_js = []
    web_map.default_css = []
    script, style = _leaflet_sources(str(leaflet_dir()))
    header = web_map.get_root().header
    header.add_child(Element(f"<style>{style}</style>"), name="leaflet_css_inline")
    header.add_child(Element(f"<script>{script}</script>"), name="leaflet_js_inline")
    folium.map.CustomPane(TILE_PANE, z_index=380, pointer_events=False).add_to(web_map)
    folium.map.CustomPane(HEATMAP_PANE, z_index=390, pointer_events=False).add_to(web_map)
    if online_tiles:
        folium.TileLayer(ONLINE_TILES_URL, attr=ONLINE_TILES_ATTRIBUTION, name="online base map (needs network)",
                         overlay=True, show=False, max_native_zoom=19, max_zoom=24).add_to(web_map)
    return web_map


def iframe(web_map, title: str, height_px: int) -> str:
    """The rendered map as the ``<iframe srcdoc=...>`` string ``gr.HTML`` shows (scripts only, sandboxed)."""
    page = web_map.get_root().render()
    return (f'<iframe class="{MAP_CLASS}" title="{html.escape(title)}" srcdoc="{html.escape(page, quote=True)}" '
            f'style="width:100%;height:{int(height_px)}px;border:0;" sandbox="allow-scripts"></iframe>')


@dataclass
class MapMarker:
    """A predicted position on the map: its pixel on the tile, its heading, and the popup's lines."""

    label: str
    uv: Sequence[float]
    heading_deg: float | None = None
    details: Sequence[str] = ()
    colour: tuple[int, int, int] = PREDICTION_COLOUR


def localization_map(sat, latlon_center, meters_per_pixel: float, prob: np.ndarray | None = None,
                     uv_pred=None, uv_gt=None, heading_deg: float | None = None, online_tiles: bool = False,
                     height_px: int = 520, heatmap_opacity: float = 0.75, heatmap_label: str = "heatmap", *,
                     heatmaps: dict[str, np.ndarray] | None = None, markers: Sequence[MapMarker] = ()) -> str:
    """The offline Leaflet map of one localization, as an iframe HTML string.

    The heatmaps are exclusive layers of Leaflet's own layer switcher (switching keeps the zoom and the other
    toggles), each marker has a popup, a legend explains the symbols, and a click on the map is posted to the
    parent page (``{"type": "geodistill-map-click", "lat", "lon"}``: the app takes it as a tile centre).

    Args:
        sat: satellite tile, (3, S, S) tensor or (S, S, 3) array, north-up.
        latlon_center: (2,) tile-centre latitude and longitude in degrees (float64).
        meters_per_pixel: metres per pixel of ``sat`` as given.
        prob: (H, W) probability map over the tile, any resolution, or None (named ``heatmap_label``).
        uv_pred: (2,) predicted pixel on ``sat``, or None (a marker with ``heading_deg``; see ``markers``).
        uv_gt: (2,) true pixel on ``sat``, or None.
        heading_deg: predicted heading (degrees clockwise from north), drawn from the prediction.
        online_tiles: add OpenStreetMap tiles as an overlay that is off until the user ticks it.
        height_px: height of the iframe.
        heatmap_opacity: opacity of the heatmap at its peak.
        heatmap_label: name of the heatmap layer in the layer switcher.
        heatmaps: more heatmaps by name, after ``prob``; the first one is shown.
        markers: predicted positions with popups (after the one of ``uv_pred``).

    Returns:
        ``<iframe class="geodistill-map" srcdoc="...">`` HTML.
    """
    import folium

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

    web_map = offline_map(latlon_center.tolist(), online_tiles)
    folium.raster_layers.ImageOverlay(png_data_url(tile), bounds=bounds, name="satellite tile",
                                      overlay=True, control=True, interactive=False, pane=TILE_PANE).add_to(web_map)
    layers = ({heatmap_label: prob} if prob is not None else {}) | dict(heatmaps or {})
    for number, (label, layer_prob) in enumerate(layers.items()):
        overlay = heatmap_rgba(layer_prob, min(size, 512), heatmap_opacity)
        folium.raster_layers.ImageOverlay(png_data_url(overlay), bounds=bounds, name=label, overlay=False,
                                          control=True, show=number == 0, pane=HEATMAP_PANE).add_to(web_map)

    group = folium.FeatureGroup(name="markers", overlay=True, control=True).add_to(web_map)
    readout = ""
    if uv_gt is not None and np.all(np.isfinite(np.asarray(uv_gt, dtype=np.float64))):
        latlon_gt = latlon_of(uv_gt)
        text = f"ground truth {latlon_gt[0]:.7f}, {latlon_gt[1]:.7f}"
        truth = folium.CircleMarker(latlon_gt, radius=6, color="#ffffff", weight=2, fill=True, fill_opacity=1.0,
                                    fill_color=_hex(GROUND_TRUTH_COLOUR), tooltip=text,
                                    bubbling_mouse_events=False).add_to(group)
        popup(html.escape(text)).add_to(truth)
    every_marker = ([MapMarker("prediction", uv_pred, heading_deg)] if uv_pred is not None else []) + list(markers)
    for marker in reversed(every_marker):  # the first marker is drawn last, on top
        latlon_pred = latlon_of(marker.uv)
        if marker.heading_deg is not None and math.isfinite(marker.heading_deg):
            heading_rad = math.radians(marker.heading_deg)
            tip = np.asarray(marker.uv, dtype=np.float64) + size / 8 * np.array([math.sin(heading_rad),
                                                                                 -math.cos(heading_rad)])
            folium.PolyLine([latlon_pred, latlon_of(tip)], color=_hex(HEADING_COLOUR), weight=4,
                            tooltip=f"{marker.label} heading {marker.heading_deg:.1f}°",
                            bubbling_mouse_events=False).add_to(group)
        lines = [f"<b>{html.escape(marker.label)}</b>", f"{latlon_pred[0]:.7f}, {latlon_pred[1]:.7f}",
                 *(html.escape(line) for line in marker.details)]
        circle = folium.CircleMarker(latlon_pred, radius=8, color=_hex(marker.colour), weight=3, fill=True,
                                     fill_opacity=0.35,
                                     tooltip=f"{marker.label} {latlon_pred[0]:.7f}, {latlon_pred[1]:.7f}",
                                     bubbling_mouse_events=False).add_to(group)
        popup("<br>".join(lines)).add_to(circle)
    if every_marker:
        first = latlon_of(every_marker[0].uv)
        readout = f"{every_marker[0].label} {first[0]:.7f}, {first[1]:.7f}"
    _latlon_readout(readout).add_to(web_map)
    _legend(every_marker, uv_gt is not None, bool(layers)).add_to(web_map.get_root().html)
    folium.LayerControl(collapsed=False).add_to(web_map)
    web_map.fit_bounds(bounds)
    return iframe(web_map, "localization map", height_px)


def _legend(markers: Sequence[MapMarker], ground_truth: bool, heatmap: bool):
    """A fixed legend box (bottom right): the markers' colours, the ground truth, the heading line, the heatmap's
    colour ramp."""
    from branca.element import Element

    rows = [f'<div><span style="{_DOT}border:3px solid {_hex(m.colour)};"></span>{html.escape(m.label)}</div>'
            for m in markers]
    if ground_truth:
        rows.append(f'<div><span style="{_DOT}background:{_hex(GROUND_TRUTH_COLOUR)};border:2px solid #fff;"></span>'
                    "ground truth</div>")
    if any(m.heading_deg is not None for m in markers):
        rows.append(f'<div><span style="display:inline-block;width:14px;height:4px;margin-right:6px;'
                    f'vertical-align:middle;background:{_hex(HEADING_COLOUR)};"></span>heading</div>')
    if heatmap:
        ramp = ",".join(_hex(tuple(int(c) for c in colour)) for colour in colormap_rgb(
            np.linspace(0.0, 1.0, 6, dtype=np.float32)[None, :], "magma", vmin=0.0, vmax=1.0)[0])
        rows.append(f'<div>probability <span style="display:inline-block;width:70px;height:8px;margin:0 4px;'
                    f'vertical-align:middle;background:linear-gradient(to right,{ramp});"></span>'
                    "low → high</div>")
    rows.append('<div style="color:#555;">click: set the tile centre (Explore → Upload)</div>')
    return Element('<div class="geodistill-legend" style="position:absolute;right:10px;bottom:24px;z-index:1000;'
                   'background:rgba(255,255,255,0.9);padding:4px 8px;border-radius:4px;font:12px sans-serif;">'
                   + "".join(rows) + "</div>")


_DOT = "display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px;vertical-align:middle;"


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
        map.on("click", function(e) {
            window.parent.postMessage({type: "geodistill-map-click", lat: e.latlng.lat, lon: e.latlng.lng}, "*");
            idle = "tile centre set to " + e.latlng.lat.toFixed(7) + ", " + e.latlng.lng.toFixed(7) +
                " (Explore, Upload)";
            box.textContent = idle;
        });
    })();
    {% endmacro %}
"""


_POPUP_TEMPLATE = """
    {% macro script(this, kwargs) %}
    {{ this._parent.get_name() }}.bindPopup({{ this.content|tojson }}, {maxWidth: 320});
    {% endmacro %}
"""


def macro(name: str, template: str, **attributes):
    """A folium element rendering ``template`` (its ``script`` macro), with ``attributes`` readable as ``this.*``."""
    from branca.element import MacroElement
    from folium.template import Template

    element = MacroElement()
    element._name = name
    element._template = Template(template)
    for key, value in attributes.items():
        setattr(element, key, value)
    return element


def popup(content_html: str):
    """A popup bound to its parent marker in plain Leaflet (folium's own Popup needs jQuery, which is not loaded)."""
    return macro("Popup", _POPUP_TEMPLATE, content=content_html)


def _latlon_readout(default_text: str):
    """A Leaflet control showing the pointer's lat/lon, and ``default_text`` while the pointer is away; a click is
    posted to the parent page."""
    return macro("LatLonReadout", _READOUT_TEMPLATE, default_text=default_text)

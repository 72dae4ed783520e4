"""The offline map of a ``refine`` run: every panorama's prior → refined position as a short line coloured by its
confidence, over an overview of the orthophoto.

Built on :mod:`geodistill.viz.webmap` (Leaflet inlined, no tile layer). Each refined panorama is a line from its
prior to its refined position and a circle at the refined end whose popup holds the name, the shift, the confidence
sentence and the flags; a panorama outside the orthophoto is a grey circle at its prior. A click on a circle posts
``{"type": "geodistill-area-pick", "name": ...}`` to the parent page (the app opens that panorama in Explore).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from geodistill.viz.images import colormap_rgb, png_data_url
from geodistill.viz.webmap import TILE_PANE, iframe, macro, offline_map, popup

PICK_MESSAGE = "geodistill-area-pick"
CONFIDENCE_CMAP = "RdYlGn"      # red: unlikely within 5 m, green: likely
OUTSIDE_COLOUR = "#808080"
VIEW_MARGIN_DEG = 2e-4
MAX_DRAWN = 3000                # more panoramas than this: the first ones by name are drawn, the map says so

_PICK_TEMPLATE = """
    {% macro script(this, kwargs) %}
    {{ this._parent.get_name() }}.on("click", function() {
        window.parent.postMessage({type: {{ this.message|tojson }}, name: {{ this.panorama|tojson }}}, "*");
    });
    {% endmacro %}
"""


def confidence_colour(confidence: float | None) -> str:
    """The line colour of a confidence in [0, 1] (grey when unknown)."""
    if confidence is None or not np.isfinite(confidence):
        return OUTSIDE_COLOUR
    rgb = colormap_rgb(np.array([[float(np.clip(confidence, 0.0, 1.0))]], np.float32), CONFIDENCE_CMAP,
                       vmin=0.0, vmax=1.0)[0, 0]
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def popup_lines(record: dict) -> list[str]:
    """The popup of a panorama (plain text lines; escaped when drawn)."""
    lines = [record["name"]]
    if record["status"] == "refined":
        lines.append(f"moved {record['shift_m']:.1f} m from its GPS position")
        if record.get("confidence_text"):
            lines.append(f"confidence: {record['confidence_text']}")
        if record.get("heading_deg") is not None:
            lines.append(f"heading {record['heading_deg']:.1f}° ({record.get('heading_source') or '?'})")
    else:
        lines.append(record.get("reason") or record["status"])
    flags = [flag.replace("_", " ") for flag in ("low_confidence", "outside_orthophoto") if record.get(flag)]
    if flags:
        lines.append("flags: " + ", ".join(flags))
    return lines


def _legend(drawn: int, total: int):
    from branca.element import Element

    ramp = ",".join(confidence_colour(c) for c in np.linspace(0.0, 1.0, 6))
    rows = [f'<div>confidence <span style="display:inline-block;width:70px;height:8px;margin:0 4px;'
            f'vertical-align:middle;background:linear-gradient(to right,{ramp});"></span>0 → 100 %</div>',
            '<div>line: GPS position → refined position (dashed: low confidence)</div>',
            f'<div><span style="display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px;'
            f'vertical-align:middle;background:{OUTSIDE_COLOUR};"></span>outside the orthophoto, or no calibrated '
            'confidence</div>',
            '<div style="color:#555;">click a circle: its details; the app opens it in Explore</div>']
    if drawn < total:
        rows.append(f"<div><b>{drawn} of {total} panoramas drawn</b> (all are in the download)</div>")
    return Element('<div class="geodistill-legend" style="position:absolute;right:10px;bottom:24px;z-index:1000;'
                   'background:rgba(255,255,255,0.9);padding:4px 8px;border-radius:4px;font:12px sans-serif;">'
                   + "".join(rows) + "</div>")


def area_map(records: Sequence[dict], overview: np.ndarray | None = None, overview_bounds=None,
             height_px: int = 560, online_tiles: bool = False) -> str:
    """The map of a refine run's records (:data:`geodistill.area.results.FIELDS`), as an iframe HTML string.

    Args:
        records: one dict per panorama; those without a prior position (skipped before reading one) are not drawn.
        overview: (H, W, 3) uint8 north-up picture of the orthophoto, or None.
        overview_bounds: its Leaflet bounds ``[[south, west], [north, east]]``.
        online_tiles: offer OpenStreetMap tiles as an overlay (off until ticked).
    """
    import folium

    placed = [r for r in records if r.get("prior_lat") is not None and r.get("prior_lon") is not None]
    drawn = placed[:MAX_DRAWN]
    points = [[r["prior_lat"], r["prior_lon"]] for r in drawn]
    points += [[r["refined_lat"], r["refined_lon"]] for r in drawn if r.get("refined_lat") is not None]
    if not points:
        raise ValueError("no panorama has a position to draw")
    # the view fits the panoramas (the orthophoto may be much larger), with a margin of about 20 m
    south, west = np.min(points, axis=0) - VIEW_MARGIN_DEG
    north, east = np.max(points, axis=0) + VIEW_MARGIN_DEG
    web_map = offline_map([(south + north) / 2, (west + east) / 2], online_tiles, zoom_start=17)
    if overview is not None and overview_bounds is not None:
        folium.raster_layers.ImageOverlay(png_data_url(overview), bounds=overview_bounds, name="orthophoto",
                                          overlay=True, control=True, interactive=False,
                                          pane=TILE_PANE).add_to(web_map)
    lines = folium.FeatureGroup(name="panoramas", overlay=True, control=True).add_to(web_map)
    for record in drawn:
        text = "<br>".join(html.escape(line) for line in popup_lines(record))
        refined = record["status"] == "refined" and record.get("refined_lat") is not None
        colour = confidence_colour(record.get("confidence")) if refined else OUTSIDE_COLOUR
        end = [record["refined_lat"], record["refined_lon"]] if refined else [record["prior_lat"], record["prior_lon"]]
        if refined:
            line = [[record["prior_lat"], record["prior_lon"]], end]
            folium.PolyLine(line, color="#ffffff", weight=7, opacity=0.9, interactive=False,
                            class_name="area-casing").add_to(lines)
            folium.PolyLine(line, color=colour, weight=4,
                            dash_array="6 4" if record.get("low_confidence") else None,
                            tooltip=html.escape(record["name"]), bubbling_mouse_events=False,
                            class_name="area-line").add_to(lines)
        circle = folium.CircleMarker(end, radius=5, color=colour, weight=2, fill=True, fill_opacity=0.8,
                                     tooltip=html.escape(record["name"]), bubbling_mouse_events=False,
                                     class_name="area-point").add_to(lines)
        popup(text).add_to(circle)
        macro("AreaPick", _PICK_TEMPLATE, message=PICK_MESSAGE, panorama=record["name"]).add_to(circle)
    _legend(len(drawn), len(placed)).add_to(web_map.get_root().html)
    folium.LayerControl(collapsed=False).add_to(web_map)
    web_map.fit_bounds([[south, west], [north, east]])
    return iframe(web_map, "refined positions", height_px)

"""The Map tab: the latest localization of the Explore tab on an offline Leaflet map.

The heatmap layers (student, teacher) are switched in the map's own layer control, so switching keeps the zoom
and the other toggles; a click on the map becomes the Explore tab's upload tile centre (:data:`MAP_CLICK_JS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

import app_handlers as handlers
from app_handlers import COMPUTE, EMPTY_MAP_MESSAGE
from geodistill.viz import webmap


def message_to_field_js(message_type: str, field_id: str, value_js: str) -> str:
    """JavaScript run once on page load: a message of ``message_type`` posted by a map (a sandboxed iframe) writes
    ``value_js`` (an expression of the message's ``data``) into the field ``#field_id`` and fires its input event."""
    return """
() => {
    window.addEventListener("message", (event) => {
        const data = event.data || {};
        if (data.type !== "%s") return;
        const field = document.querySelector("#%s textarea, #%s input");
        if (!field) return;
        field.value = %s;
        field.dispatchEvent(new Event("input", {bubbles: true}));
    });
}
""" % (message_type, field_id, field_id, value_js)


# a click on the map goes into the "clicked point" field, whose input event makes it the Explore tab's upload tile
# centre (app.py)
MAP_CLICK_JS = message_to_field_js("geodistill-map-click", "map-click",
                                   'Number(data.lat).toFixed(7) + ", " + Number(data.lon).toFixed(7)')


@dataclass
class MapTab:
    online: gr.Checkbox
    clicked: gr.Textbox
    view: gr.HTML


def build_map_tab() -> MapTab:
    """Lay out the tab (call inside ``gr.Tab``)."""
    with gr.Row():
        online = gr.Checkbox(False, label="Offer online base tiles (needs a network)")
        gr.Markdown("Switch the student/teacher heatmap in the map's layer control; click a marker for its error, "
                    "heading and confidence; click the map to set the tile centre of an upload (Explore).")
        clicked = gr.Textbox(label="Clicked point: lat, lon (the tile centre of an upload)", interactive=True,
                             elem_id="map-click")
    view = gr.HTML(webmap.message_map(EMPTY_MAP_MESSAGE), elem_id="map-view")
    return MapTab(online=online, clicked=clicked, view=view)


def map_inputs(tab: MapTab, sample_state: gr.State, predictions_state: gr.State) -> list:
    return [sample_state, predictions_state, tab.online]


def wire_map(tab: MapTab, sample_state: gr.State, predictions_state: gr.State) -> None:
    """Switching the online tiles redraws the map."""
    tab.online.input(handlers.render_map, map_inputs(tab, sample_state, predictions_state), tab.view, api_name=False,
                     concurrency_id=COMPUTE, concurrency_limit=1)

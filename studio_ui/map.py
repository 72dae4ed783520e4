"""The Map tab: the latest localization of the Explore tab on an offline Leaflet map."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

import app_handlers as handlers
from app_handlers import COMPUTE, EMPTY_MAP_MESSAGE
from geodistill.viz import webmap


@dataclass
class MapTab:
    layer: gr.Radio
    online: gr.Checkbox
    view: gr.HTML


def build_map_tab() -> MapTab:
    """Lay out the tab (call inside ``gr.Tab``)."""
    with gr.Row():
        layer = gr.Radio(["student", "teacher"], value="student", label="Heatmap layer")
        online = gr.Checkbox(False, label="Offer online base tiles (needs a network)")
    view = gr.HTML(webmap.message_map(EMPTY_MAP_MESSAGE), elem_id="map-view")
    return MapTab(layer=layer, online=online, view=view)


def map_inputs(tab: MapTab, sample_state: gr.State, predictions_state: gr.State) -> list:
    return [sample_state, predictions_state, tab.layer, tab.online]


def wire_map(tab: MapTab, sample_state: gr.State, predictions_state: gr.State) -> None:
    """Switching the layer or the online tiles redraws the map."""
    gr.on([tab.layer.input, tab.online.input], handlers.render_map, map_inputs(tab, sample_state, predictions_state),
          tab.view, api_name=False, concurrency_id=COMPUTE, concurrency_limit=1)

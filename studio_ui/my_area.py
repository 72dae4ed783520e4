"""The My area tab: an orthophoto and a folder of geotagged panoramas (on the server or uploaded), their GPS positions
refined in the background with progress and Cancel, every prior → refined position on the offline map, a panorama
opened in Explore, the GeoJSON and CSV, an adaptation run of the job manager."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

import studio_ui.my_area_handlers as area
from geodistill.config import ADAPT
from geodistill.viz import webmap
from geodistill.viz.area_map import PICK_MESSAGE
from studio_ui.map import message_to_field_js

# a click on a panorama of the area map goes into the "clicked on the map" field, whose change event opens it in
# Explore (app.py)
AREA_PICK_JS = message_to_field_js(PICK_MESSAGE, "area-pick", "String(data.name)")


@dataclass
class MyAreaTab:
    model: gr.Dropdown
    entry: gr.Dropdown
    pick: gr.Textbox
    open_button: gr.Button
    context: gr.State
    adapt_button: gr.Button
    adapt_epochs: gr.Number
    adapt_status: gr.Markdown


def build_my_area_tab(model_choices: list[tuple[str, str]]) -> MyAreaTab:
    """Lay out the tab (call inside ``gr.Tab``) and wire its own events; "open in Explore" and "adapt" are wired
    across tabs in ``app.py``."""
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            source = gr.Radio(area.SOURCES, value=area.SOURCES[0], label="Inputs", elem_id="area-source")
            with gr.Accordion("Folders on the server", open=True):
                ortho = gr.Textbox(label="Orthophoto: a GeoTIFF or an XYZ tile folder (relative: under the data "
                                         "folder)", elem_id="area-ortho")
                panos = gr.Textbox(label="Panorama folder (2:1, EXIF GPS or the CSV)", elem_id="area-panos")
                gps = gr.Textbox(label="GPS CSV name,lat,lon[,heading] (optional)", elem_id="area-gps")
            with gr.Accordion("Upload", open=False):
                zip_file = gr.File(label="Zip of panoramas (a GPS CSV inside is used)", file_types=[".zip"],
                                   elem_id="area-zip")
                tif_file = gr.File(label="Orthophoto (GeoTIFF)", file_types=[".tif", ".tiff"], elem_id="area-tif")
            model = gr.Dropdown(model_choices, value=model_choices[0][1], label="Model")
            sigma = gr.Number(10.0, minimum=0.1, label="GPS error: prior sigma (m)", elem_id="area-sigma")
            with gr.Row():
                run_button = gr.Button("Localize the area", variant="primary", elem_id="area-run")
                cancel_button = gr.Button("Cancel", variant="stop", elem_id="area-cancel")
            progress = gr.HTML(elem_id="area-progress-box")
            downloads = gr.File(label="Refined positions (GeoJSON, CSV)", file_count="multiple",
                                elem_id="area-downloads")
            with gr.Accordion("Adapt the model to this area (GeoDistill, no labels)", open=False):
                adapt_epochs = gr.Number(ADAPT.epochs, precision=0, minimum=1, label="Epochs")
                adapt_button = gr.Button("Start adaptation", elem_id="area-adapt")
                adapt_status = gr.Markdown(elem_id="area-adapt-status")
        with gr.Column(scale=3):
            view = gr.HTML(webmap.message_map(area.EMPTY_MESSAGE), elem_id="area-map")
            with gr.Row():
                entry = gr.Dropdown([], value=None, label="Panorama", elem_id="area-entry")
                open_button = gr.Button("Open in Explore", scale=0, elem_id="area-open")
                pick = gr.Textbox(label="Clicked on the map", interactive=True, elem_id="area-pick", scale=0)
    context = gr.State(None)
    run_button.click(area.run_refine, [source, ortho, panos, gps, zip_file, tif_file, model, sigma],
                     [progress, view, downloads, entry, context], api_name=False,
                     concurrency_id="my-area", concurrency_limit=2)
    cancel_button.click(area.cancel_refine, None, progress, api_name=False)
    for upload in (zip_file, tif_file):
        upload.upload(lambda: area.SOURCES[1], None, source, api_name=False, show_progress="hidden")
    return MyAreaTab(model=model, entry=entry, pick=pick, open_button=open_button, context=context,
                     adapt_button=adapt_button, adapt_epochs=adapt_epochs, adapt_status=adapt_status)

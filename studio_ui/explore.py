"""The Explore tab: a sample (bundled, VIGOR root or upload), the teacher and student heatmaps, the FoV."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

import app_handlers as handlers
from app_handlers import COMPUTE, SOURCES
from geodistill.data.georeference import WORLD_FILE_SUFFIXES


@dataclass
class ExploreTab:
    sample_state: gr.State
    predictions_state: gr.State
    source: gr.Radio
    sample_name: gr.Dropdown
    loader_inputs: list
    sample_info: gr.Markdown
    load_button: gr.Button
    model: gr.Dropdown
    heading: gr.Radio
    limited: gr.Checkbox
    fov_deg: gr.Slider
    fov_center: gr.Slider
    random_button: gr.Button
    opacity: gr.Slider
    show_field: gr.Checkbox
    localize_button: gr.Button
    outputs: list            # panorama, teacher, student, difference, BEV, summary
    tile_centre: gr.Textbox
    upload_files: tuple      # panorama, tile, world file
    mpp: gr.Textbox
    georef_note: gr.Markdown
    export_button: gr.Button
    export_files: gr.File

    @property
    def localize_inputs(self) -> list:
        return [self.sample_state, self.model, self.limited, self.fov_deg, self.fov_center, self.heading]

    @property
    def render_inputs(self) -> list:
        return [self.sample_state, self.predictions_state, self.opacity, self.limited, self.show_field]


def build_explore_tab(model_choices: list[tuple[str, str]]) -> ExploreTab:
    """Lay out the tab (call inside ``gr.Tab``); :func:`wire_explore` connects it once the Map tab exists."""
    names = handlers._sample_names()
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            source = gr.Radio(SOURCES, value=SOURCES[0], label="Sample source")
            sample_name = gr.Dropdown(names, value=None, label="Bundled sample", elem_id="sample-picker")
            with gr.Accordion("VIGOR root", open=False):
                vigor_root = gr.Textbox(label="Root folder")
                area = gr.Radio(["same", "cross"], value="cross", label="Area")
                split = gr.Dropdown(["test", "val", "train", "all"], value="test", label="Split")
                index = gr.Number(0, precision=0, label="Index")
            with gr.Accordion("Upload", open=False):
                pano_file = gr.File(label="Panorama (2:1 equirectangular)", file_types=["image"],
                                    elem_id="pano-upload")
                sat_file = gr.File(label="Satellite tile (square, north-up; a GeoTIFF brings its georeference)",
                                   file_types=["image", ".tif", ".tiff"], elem_id="sat-upload")
                world_file = gr.File(label="World file of the tile (.pgw, .jgw, .wld; optional)",
                                     file_types=list(WORLD_FILE_SUFFIXES), elem_id="world-upload")
                tile_centre = gr.Textbox(label="Tile centre: lat, lon (empty: no georeference)",
                                         placeholder="47.3769, 8.5417 (paste it, or click the Map)",
                                         elem_id="tile-centre")
                with gr.Row():
                    mpp = gr.Textbox(label="Metres per pixel", placeholder="0.01-20", elem_id="tile-mpp")
                    zoom = gr.Textbox(label="or zoom", placeholder="with lat, lon", elem_id="tile-zoom")
                georef_note = gr.Markdown(elem_id="georef-note")
                hfov = gr.Textbox(label="Pinhole photo: horizontal FoV (°)", placeholder="empty: a 360° panorama")
                gt_latlon = gr.Textbox(label="Known camera position: lat, lon (optional: gives the error)",
                                       elem_id="gt-latlon")
                gt_pixel = gr.Textbox(label="or its pixel u, v in the tile file (optional)", elem_id="gt-pixel")
            load_button = gr.Button("Load sample", elem_id="load-button")
            sample_info = gr.Markdown("Pick a bundled sample to start." if names else
                                      "No bundled samples are installed: use a VIGOR root or an upload.")
            model = gr.Dropdown(model_choices, value=model_choices[0][1], label="Model")
            heading = gr.Radio(handlers.heading_choices(model_choices[0][1]), value="45", label="Panorama heading",
                               elem_id="heading-choice")
            limited = gr.Checkbox(True, label="Limit the student's field of view", elem_id="fov-toggle")
            fov_deg = gr.Slider(30, 360, 180, step=5, label="FoV width (°)")
            fov_center = gr.Slider(-180, 180, 0, step=5, label="FoV centre (° from the heading)")
            random_button = gr.Button("Random FoV")
            opacity = gr.Slider(0, 1, 0.6, step=0.05, label="Heatmap opacity")
            show_field = gr.Checkbox(False, label="Draw the heading field (CCVPE models)", elem_id="field-toggle")
            localize_button = gr.Button("Localize", variant="primary", elem_id="localize-button")
            export_button = gr.Button("Export the result (JSON, GeoJSON)", elem_id="export-button")
            export_files = gr.File(label="Exported result", file_count="multiple", elem_id="export-files")
        with gr.Column(scale=3):
            pano_view = gr.Image(label="Panorama (dimmed: hidden from the student)", elem_id="pano-view")
            summary = gr.Markdown(elem_id="prediction-summary")
            with gr.Row():
                teacher_view = gr.Image(label="Teacher (full view)", elem_id="teacher-heatmap")
                student_view = gr.Image(label="Student (limited FoV)", elem_id="student-heatmap")
            with gr.Row():
                difference_view = gr.Image(label="Student − teacher", elem_id="difference-heatmap")
                bev_view = gr.Image(label="BEV at the student's prediction", elem_id="bev-view")
    return ExploreTab(
        sample_state=gr.State(None), predictions_state=gr.State(None), source=source, sample_name=sample_name,
        loader_inputs=[source, sample_name, vigor_root, area, split, index, pano_file, sat_file, tile_centre, mpp, zoom,
                       hfov, gt_latlon, gt_pixel],
        sample_info=sample_info, load_button=load_button, model=model, heading=heading, limited=limited,
        fov_deg=fov_deg, fov_center=fov_center, random_button=random_button, opacity=opacity, show_field=show_field,
        localize_button=localize_button,
        outputs=[pano_view, teacher_view, student_view, difference_view, bev_view, summary],
        tile_centre=tile_centre, upload_files=(pano_file, sat_file, world_file), mpp=mpp, georef_note=georef_note,
        export_button=export_button, export_files=export_files)


def wire_explore(tab: ExploreTab, map_view: gr.HTML, map_inputs: list):
    """Loading a sample or changing what the models see localizes, draws and maps it (one chain). Returns the
    function that appends that chain to another event (another tab's "open in Explore")."""
    compute = dict(concurrency_id=COMPUTE, concurrency_limit=1)

    def then_localize(event, api: bool = False):
        """After ``event``: localize, draw, map (named API endpoints for the bundled-sample chain only)."""
        def named(endpoint: str):
            return endpoint if api else False

        event.success(handlers.localize, tab.localize_inputs, tab.predictions_state, api_name=named("localize"),
                      **compute) \
            .success(handlers.render, tab.render_inputs, tab.outputs, api_name=named("render"), **compute) \
            .success(handlers.render_map, map_inputs, map_view, api_name=named("map"), **compute)

    then_localize(tab.sample_name.input(handlers.load_bundled, tab.sample_name,
                                        [tab.sample_state, tab.sample_info, tab.source], api_name="load_sample"),
                  api=True)
    then_localize(tab.load_button.click(handlers.load_sample, tab.loader_inputs, [tab.sample_state, tab.sample_info],
                                        api_name=False))
    # controls that change what the models see start the same chain through a no-op event (before a sample is
    # loaded the chain does nothing); the Localize button asks for a sample
    then_localize(gr.on([tab.limited.input, tab.fov_deg.release, tab.fov_center.release, tab.heading.input],
                        lambda: None, None, None, api_name=False, show_progress="hidden"))
    # the heading choices follow what the model can do (a CCVPE model offers the full circle); a model picked by
    # hand localizes with the updated choice, one set by another tab (a worst case, a run) brings a valid one
    then_localize(tab.model.input(handlers.heading_radio, [tab.model, tab.heading], tab.heading, api_name=False,
                                  show_progress="hidden"))
    tab.model.change(handlers.heading_radio, [tab.model, tab.heading], tab.heading, api_name=False,
                     show_progress="hidden")
    then_localize(tab.localize_button.click(handlers.require_sample, tab.sample_state, None, api_name=False))
    then_localize(tab.random_button.click(handlers.random_fov, None, [tab.fov_deg, tab.fov_center], api_name=False))
    tab.opacity.release(handlers.render, tab.render_inputs, tab.outputs, api_name=False, **compute)
    tab.show_field.input(handlers.render, tab.render_inputs, tab.outputs, api_name=False, **compute)
    tab.export_button.click(handlers.export_result, [tab.sample_state, tab.predictions_state, tab.model],
                            tab.export_files, api_name=False)
    pano_file, sat_file, world_file = tab.upload_files
    # an upload makes the upload the sample source; a GeoTIFF tile or a world file fills in its georeference
    for upload in (pano_file, sat_file, world_file):
        upload.upload(lambda: SOURCES[2], None, tab.source, api_name=False, show_progress="hidden")
    gr.on([sat_file.upload, world_file.upload], handlers.read_upload_georeference, [sat_file, world_file],
          [tab.tile_centre, tab.mpp, tab.georef_note], api_name=False)
    return then_localize

"""The Explore tab: a sample (bundled, VIGOR root or upload), the teacher and student heatmaps, the FoV."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

import app_handlers as handlers
from app_handlers import COMPUTE, SOURCES


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
    localize_button: gr.Button
    outputs: list            # panorama, teacher, student, difference, BEV, summary

    @property
    def localize_inputs(self) -> list:
        return [self.sample_state, self.model, self.limited, self.fov_deg, self.fov_center, self.heading]

    @property
    def render_inputs(self) -> list:
        return [self.sample_state, self.predictions_state, self.opacity, self.limited]


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
                sat_file = gr.File(label="Satellite tile (square, north-up)", file_types=["image"],
                                   elem_id="sat-upload")
                # text fields, empty by default (a number field would start at 0: Null Island); empty lat/lon
                # mean no georeference, the prediction in pixels and metres only
                with gr.Row():
                    lat = gr.Textbox(label="Tile centre lat", placeholder="empty: no georeference")
                    lon = gr.Textbox(label="Tile centre lon", placeholder="empty: no georeference")
                with gr.Row():
                    mpp = gr.Textbox(label="Metres per pixel", placeholder="0.01-20")
                    zoom = gr.Textbox(label="or zoom", placeholder="with lat/lon")
                hfov = gr.Textbox(label="Pinhole photo: horizontal FoV (°)", placeholder="empty: a 360° panorama")
            load_button = gr.Button("Load sample", elem_id="load-button")
            sample_info = gr.Markdown("Pick a bundled sample to start." if names else
                                      "No bundled samples are installed: use a VIGOR root or an upload.")
            model = gr.Dropdown(model_choices, value=model_choices[0][1], label="Model")
            heading = gr.Radio(handlers.heading_choices(), value="45", label="Panorama heading",
                               elem_id="heading-choice")
            limited = gr.Checkbox(True, label="Limit the student's field of view", elem_id="fov-toggle")
            fov_deg = gr.Slider(30, 360, 180, step=5, label="FoV width (°)")
            fov_center = gr.Slider(-180, 180, 0, step=5, label="FoV centre (° from the heading)")
            random_button = gr.Button("Random FoV")
            opacity = gr.Slider(0, 1, 0.6, step=0.05, label="Heatmap opacity")
            localize_button = gr.Button("Localize", variant="primary", elem_id="localize-button")
        with gr.Column(scale=3):
            pano_view = gr.Image(label="Panorama (dimmed: hidden from the student)", elem_id="pano-view")
            with gr.Row():
                teacher_view = gr.Image(label="Teacher (full view)", elem_id="teacher-heatmap")
                student_view = gr.Image(label="Student (limited FoV)", elem_id="student-heatmap")
                difference_view = gr.Image(label="Student − teacher (red: student higher)",
                                           elem_id="difference-heatmap")
            with gr.Row():
                bev_view = gr.Image(label="BEV of the panorama at the student's prediction", elem_id="bev-view")
                summary = gr.Markdown(elem_id="prediction-summary")
    return ExploreTab(
        sample_state=gr.State(None), predictions_state=gr.State(None), source=source, sample_name=sample_name,
        loader_inputs=[source, sample_name, vigor_root, area, split, index, pano_file, sat_file, lat, lon, mpp, zoom,
                       hfov],
        sample_info=sample_info, load_button=load_button, model=model, heading=heading, limited=limited,
        fov_deg=fov_deg, fov_center=fov_center, random_button=random_button, opacity=opacity,
        localize_button=localize_button,
        outputs=[pano_view, teacher_view, student_view, difference_view, bev_view, summary])


def wire_explore(tab: ExploreTab, map_view: gr.HTML, map_inputs: list) -> None:
    """Loading a sample or changing what the models see localizes, draws and maps it (one chain)."""
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
    # controls that change what the models see start the same chain through a no-op event
    then_localize(gr.on([tab.localize_button.click, tab.limited.input, tab.fov_deg.release, tab.fov_center.release,
                         tab.model.input, tab.heading.input],
                        lambda: None, None, None, api_name=False, show_progress="hidden"))
    then_localize(tab.random_button.click(handlers.random_fov, None, [tab.fov_deg, tab.fov_center], api_name=False))
    tab.opacity.release(handlers.render, tab.render_inputs, tab.outputs, api_name=False, **compute)

"""The Evaluate tab: the VIGOR protocol on a dataset split, metrics per city, the error CDF, the worst cases (each
opens in Explore), the per-sample CSV."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

import app_handlers as handlers
from app_handlers import COMPUTE

METRIC_HEADERS = ["model", "city", "n", "mean (m)", "median (m)", "R@1m (%)", "R@3m (%)", "R@5m (%)"]


@dataclass
class EvaluateTab:
    model: gr.Dropdown
    inputs: list              # the arguments of app_handlers.evaluate, in order
    button: gr.Button
    outputs: list             # metrics, CDF, worst cases, setting, per-sample CSV, the cases' samples
    worst: gr.Gallery
    cases: gr.State


def build_evaluate_tab(model_choices: list[tuple[str, str]]) -> EvaluateTab:
    """Lay out the tab (call inside ``gr.Tab``) and wire its own events."""
    with gr.Row():
        model = gr.Dropdown(model_choices, value=model_choices[0][1], label="Model")
        root = gr.Textbox(handlers.PATHS.display(handlers._samples_root()), label="Dataset root (VIGOR layout)")
        area = gr.Radio(["same", "cross"], value="same", label="Area")
        split = gr.Dropdown(["test", "val", "train", "all"], value="all", label="Split")
    with gr.Row():
        limit = gr.Number(0, precision=0, minimum=0, label="At most N queries (0: all)")
        fov = gr.Slider(30, 360, 360, step=5, label="FoV (°)")
        orientation = gr.Radio(handlers.orientation_choices(model_choices[0][1]), value="aligned",
                               label="Query headings",
                               elem_id="evaluate-heading")
        compare = gr.Checkbox(True, label="Also evaluate the teacher")
        button = gr.Button("Evaluate", variant="primary", elem_id="evaluate-button")
    setting = gr.Markdown()
    metrics = gr.Dataframe(headers=METRIC_HEADERS, label="Metrics", elem_id="metrics-table")
    with gr.Row():
        cdf = gr.Image(label="Error CDF", elem_id="error-cdf")
        worst = gr.Gallery(label="Worst cases (student; click one to open it in Explore)", columns=3,
                           elem_id="worst-cases")
    per_sample = gr.File(label="Per-sample CSV (student; pixels of the tile file in *_file_px)",
                         elem_id="per-sample-csv")
    cases = gr.State(None)
    tab = EvaluateTab(model=model, inputs=[model, root, area, split, limit, fov, compare, orientation],
                      button=button, outputs=[metrics, cdf, worst, setting, per_sample, cases], worst=worst,
                      cases=cases)
    model.change(handlers.orientation_radio, [model, orientation], orientation, api_name=False,
                 show_progress="hidden")
    tab.button.click(handlers.evaluate, tab.inputs, tab.outputs, api_name="evaluate", concurrency_id=COMPUTE,
                     concurrency_limit=1)
    return tab

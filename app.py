"""GeoDistill Studio: explore, compare teacher and student, map, train and evaluate in the browser.

``python app.py [--host 127.0.0.1] [--port 7860] [--share false]``. Importing this module starts nothing;
:func:`build_demo` builds the interface and only ``__main__`` launches it. This file is layout and event
wiring; the handlers live in ``app_handlers.py`` and use the core's public API (:mod:`geodistill.inference`,
:mod:`geodistill.evaluation`, :mod:`geodistill.engine.jobs`, :mod:`geodistill.viz`).
"""

from __future__ import annotations

import argparse
import logging
import sys

import gradio as gr

import app_handlers as handlers
from app_handlers import COMPUTE, JOBS, MAX_UPLOAD_MB, SOURCES, TASKS, UNTRAINED
from geodistill.viz import webmap

def build_demo() -> gr.Blocks:
    """The four-tab interface (cheap: no model is loaded until a handler needs one)."""
    names = handlers._sample_names()
    choices = handlers.model_choices()
    recipes = handlers.recipe_files()
    default_recipe = "tiny.yaml" if "tiny.yaml" in recipes else None
    with gr.Blocks(title="GeoDistill Studio") as demo:
        sample_state, predictions_state, curves_state = gr.State(None), gr.State(None), gr.State(None)
        gr.Markdown("# GeoDistill Studio\nWhere was this panorama taken? Teacher (full view) and student "
                    "(limited field of view) localize it on the satellite tile.")
        gr.Markdown(handlers.startup_message(), elem_id="startup-message")
        with gr.Tabs() as tabs:
            with gr.Tab("Explore", id="explore"):
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
                            with gr.Row():
                                lat, lon = gr.Number(label="Tile centre lat"), gr.Number(label="Tile centre lon")
                            with gr.Row():
                                mpp, zoom = gr.Number(label="Metres per pixel"), gr.Number(label="or zoom")
                            hfov = gr.Number(label="Pinhole photo: horizontal FoV (°)")
                        load_button = gr.Button("Load sample", elem_id="load-button")
                        sample_info = gr.Markdown("Pick a bundled sample to start." if names else
                                                  "No bundled samples are installed: use a VIGOR root or an upload.")
                        model = gr.Dropdown(choices, value=choices[0][1], label="Model")
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
                            bev_view = gr.Image(label="BEV of the panorama at the student's prediction",
                                                elem_id="bev-view")
                            summary = gr.Markdown(elem_id="prediction-summary")
            with gr.Tab("Map", id="map"):
                with gr.Row():
                    map_layer = gr.Radio(["student", "teacher"], value="student", label="Heatmap layer")
                    online = gr.Checkbox(False, label="Offer online base tiles (needs a network)")
                map_view = gr.HTML(webmap.message_map("Localize a sample in the Explore tab to see it on the map."),
                                   elem_id="map-view")
            with gr.Tab("Train", id="train"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=300):
                        run_name = gr.Textbox(label="Run name (empty: automatic)")
                        recipe = gr.Dropdown(recipes, value=default_recipe, label="Recipe (training/configs)",
                                             elem_id="recipe-picker")
                        (task_value, init_value, dataset_value, root_value, area_value, device_value, epochs_value,
                         batch_value, lr_value, steps_value, fov_min_value, fov_max_value, tau_t_value, tau_s_value,
                         ema_value) = handlers.recipe_values(default_recipe)
                        task = gr.Radio(TASKS, value=task_value, label="What to train")
                        init_checkpoint = gr.Dropdown([c for c in choices if c[1] != UNTRAINED], value=init_value,
                                                      allow_custom_value=True, label="Start GeoDistill from")
                        dataset = gr.Radio(["synthetic", "VIGOR root"], value=dataset_value,
                                           label="Dataset (synthetic: generated when missing)")
                        data_root = gr.Textbox(root_value, label="Data root (relative: under the data folder)")
                        train_area = gr.Radio(["same", "cross"], value=area_value, label="Area")
                        with gr.Row():
                            device = gr.Dropdown(["auto", "cpu", "cuda"], value=device_value, label="Device",
                                                 allow_custom_value=True)
                            gpus = gr.Number(1, precision=0, minimum=1, maximum=16, label="GPUs (torchrun if > 1)")
                        with gr.Row():
                            epochs = gr.Number(epochs_value, precision=0, minimum=1, label="Epochs")
                            batch_size = gr.Number(batch_value, precision=0, minimum=1, label="Batch size")
                        with gr.Row():
                            lr = gr.Number(lr_value, label="Learning rate")
                            max_steps = gr.Number(steps_value, precision=0, minimum=0, label="Max steps/epoch (0: all)")
                        with gr.Accordion("GeoDistill", open=False):
                            fov_min = gr.Slider(30, 360, fov_min_value, step=5, label="Smallest student FoV (°)")
                            fov_max = gr.Slider(30, 360, fov_max_value, step=5, label="Largest student FoV (°)")
                            tau_teacher = gr.Number(tau_t_value, label="Teacher temperature")
                            tau_student = gr.Number(tau_s_value, label="Student temperature")
                            ema = gr.Slider(0.5, 0.9999, ema_value, label="EMA momentum")
                        start_button = gr.Button("Start training", variant="primary", elem_id="start-button")
                    with gr.Column(scale=2):
                        with gr.Row():
                            run_picker = gr.Dropdown([r.name for r in JOBS.list_runs()], value=None, label="Run",
                                                     allow_custom_value=True, elem_id="run-picker")
                            refresh_button = gr.Button("Refresh", scale=0)
                        run_status = gr.Markdown(elem_id="run-status")
                        run_progress = gr.HTML(elem_id="run-progress-box")
                        with gr.Row():
                            cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel-button")
                            resume_button = gr.Button("Resume", elem_id="resume-button")
                            explore_button = gr.Button("Load into Explore")
                        curves = gr.Image(label="Loss and validation", elem_id="run-curves")
                        run_log = gr.Textbox(label="Log", lines=12, max_lines=12, autoscroll=True, elem_id="run-log")
            with gr.Tab("Evaluate", id="evaluate"):
                with gr.Row():
                    eval_model = gr.Dropdown(choices, value=choices[0][1], label="Model")
                    eval_root = gr.Textbox(str(handlers._samples_root()), label="Dataset root (VIGOR layout)")
                    eval_area = gr.Radio(["same", "cross"], value="same", label="Area")
                    eval_split = gr.Dropdown(["test", "val", "train", "all"], value="all", label="Split")
                with gr.Row():
                    eval_limit = gr.Number(0, precision=0, minimum=0, label="At most N queries (0: all)")
                    eval_fov = gr.Slider(30, 360, 360, step=5, label="FoV (°)")
                    compare = gr.Checkbox(True, label="Also evaluate the teacher")
                    eval_button = gr.Button("Evaluate", variant="primary", elem_id="evaluate-button")
                eval_setting = gr.Markdown()
                metrics = gr.Dataframe(headers=["model", "city", "n", "mean (m)", "median (m)", "R@1m (%)",
                                                "R@3m (%)", "R@5m (%)"], label="Metrics", elem_id="metrics-table")
                with gr.Row():
                    cdf = gr.Image(label="Error CDF", elem_id="error-cdf")
                    worst = gr.Gallery(label="Worst cases (student)", columns=3, elem_id="worst-cases")

        compute = dict(concurrency_id=COMPUTE, concurrency_limit=1)
        explore_inputs = [sample_state, model, limited, fov_deg, fov_center, heading]
        render_inputs = [sample_state, predictions_state, opacity, limited]
        render_outputs = [pano_view, teacher_view, student_view, difference_view, bev_view, summary]
        map_inputs = [sample_state, predictions_state, map_layer, online]

        def then_localize(event, api: bool = False):
            """After ``event``: localize, draw, map (named API endpoints for the bundled-sample chain only)."""
            def named(endpoint: str):
                return endpoint if api else False

            event.success(handlers.localize, explore_inputs, predictions_state, api_name=named("localize"), **compute) \
                .success(handlers.render, render_inputs, render_outputs, api_name=named("render"), **compute) \
                .success(handlers.render_map, map_inputs, map_view, api_name=named("map"), **compute)

        then_localize(sample_name.input(handlers.load_bundled, sample_name, [sample_state, sample_info, source],
                                        api_name="load_sample"), api=True)
        loader_inputs = [source, sample_name, vigor_root, area, split, index, pano_file, sat_file, lat, lon, mpp,
                         zoom, hfov]
        then_localize(load_button.click(handlers.load_sample, loader_inputs, [sample_state, sample_info],
                                        api_name=False))
        # controls that change what the models see start the same chain through a no-op event
        then_localize(gr.on([localize_button.click, limited.input, fov_deg.release, fov_center.release, model.input,
                             heading.input],
                            lambda: None, None, None, api_name=False, show_progress="hidden"))
        then_localize(random_button.click(handlers.random_fov, None, [fov_deg, fov_center], api_name=False))
        opacity.release(handlers.render, render_inputs, render_outputs, api_name=False, **compute)
        gr.on([map_layer.input, online.input], handlers.render_map, map_inputs, map_view, api_name=False, **compute)

        form = [recipe, task, init_checkpoint, dataset, data_root, train_area, device, epochs, batch_size, lr,
                max_steps, fov_min, fov_max, tau_teacher, tau_student, ema]
        recipe.input(handlers.recipe_values, recipe, form[1:], api_name=False)
        start_event = start_button.click(handlers.start_training, [run_name, gpus, *form], [run_picker, run_status],
                                         api_name="start_training")
        timer = gr.Timer(1.0)
        timer.tick(handlers.poll_run, [run_picker, curves_state],
                   [run_status, run_progress, run_log, curves, curves_state], api_name=False, show_progress="hidden")
        cancel_button.click(handlers.cancel_run, run_picker, run_status, cancels=[start_event], api_name="cancel_run")
        resume_button.click(handlers.resume_run, [run_picker, gpus], run_status, api_name="resume_run")
        explore_button.click(handlers.use_run_in_explore, run_picker, [model, eval_model, tabs], api_name=False)
        refresh_button.click(handlers.refresh_lists, None, [run_picker, eval_model, init_checkpoint], api_name=False)
        eval_inputs = [eval_model, eval_root, eval_area, eval_split, eval_limit, eval_fov, compare]
        eval_button.click(handlers.evaluate, eval_inputs, [metrics, cdf, worst, eval_setting], api_name="evaluate",
                          **compute)
    return demo.queue(default_concurrency_limit=4)


def _port(text: str) -> int:
    """``--port`` value: an integer in 1-65535 (argparse turns the ValueError into a usage error)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, got {port}")
    return port


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="GeoDistill Studio in the browser")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=_port, default=7860, help="port to serve on, 1-65535 (default: 7860)")
    parser.add_argument("--share", default="false", choices=["true", "false"], help="Gradio share link")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        build_demo().launch(server_name=args.host, server_port=args.port, share=args.share == "true",
                            max_file_size=f"{MAX_UPLOAD_MB}mb", show_error=False)
    except OSError as error:  # the port is taken or the address cannot be bound
        print(f"error: cannot serve on {args.host}:{args.port} ({str(error).split('. ')[0]}); "
              "pick another with --port or --host", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

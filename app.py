"""GeoDistill Studio: explore, compare teacher and student, map, train and evaluate in the browser.

``python app.py [--host 127.0.0.1] [--port 7860] [--share false]``. Importing this module starts nothing;
:func:`build_demo` builds the interface and only ``__main__`` launches it. This file is the entry point and the
wiring between tabs; each tab is a module of ``studio_ui/`` (layout and its own events), the handlers live in
``app_handlers.py`` and use the core's public API (:mod:`geodistill.studio` for the models,
:mod:`geodistill.evaluation`, :mod:`geodistill.engine.jobs`, :mod:`geodistill.viz`).
"""

from __future__ import annotations

import argparse
import logging
import sys

import gradio as gr

import app_handlers as handlers
from app_handlers import MAX_UPLOAD_MB
from studio_ui.evaluate import build_evaluate_tab
from studio_ui.explore import build_explore_tab, wire_explore
from studio_ui.map import build_map_tab, map_inputs, wire_map
from studio_ui.train import TrainTab, build_train_tab


def build_demo() -> gr.Blocks:
    """The four-tab interface (cheap: no model is loaded until a handler needs one)."""
    choices = handlers.model_choices()
    with gr.Blocks(title="GeoDistill Studio") as demo:
        gr.Markdown("# GeoDistill Studio\nWhere was this panorama taken? Teacher (full view) and student "
                    "(limited field of view) localize it on the satellite tile.")
        gr.Markdown(handlers.startup_message(), elem_id="startup-message")
        with gr.Tabs() as tabs:
            with gr.Tab("Explore", id="explore"):
                explore = build_explore_tab(choices)
            with gr.Tab("Map", id="map"):
                map_tab = build_map_tab()
            with gr.Tab("Train", id="train"):
                train = build_train_tab(choices)
            with gr.Tab("Evaluate", id="evaluate"):
                evaluate = build_evaluate_tab(choices)
        wire_explore(explore, map_tab.view, map_inputs(map_tab, explore.sample_state, explore.predictions_state))
        wire_map(map_tab, explore.sample_state, explore.predictions_state)
        _wire_across_tabs(train, explore.model, evaluate.model, tabs)
    return demo.queue(default_concurrency_limit=4)


def _wire_across_tabs(train: TrainTab, explore_model: gr.Dropdown, evaluate_model: gr.Dropdown,
                      tabs: gr.Tabs) -> None:
    """A finished run becomes a model of Explore and Evaluate; Refresh updates every list of runs and models."""
    train.explore_button.click(handlers.use_run_in_explore, train.run_picker, [explore_model, evaluate_model, tabs],
                               api_name=False)
    train.refresh_button.click(handlers.refresh_lists, None, [train.run_picker, evaluate_model, train.init_checkpoint],
                               api_name=False)


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

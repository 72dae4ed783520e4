"""GeoDistill Studio: explore, compare teacher and student, map, train, evaluate, refine your own area in the browser.

``python app.py [--host 127.0.0.1] [--port 7860] [--share false]``. Importing this module starts nothing;
:func:`build_demo` builds the interface and only ``__main__`` launches it. This file is the entry point and the
wiring between tabs; each tab is a module of ``studio_ui/`` (layout and its own events), the handlers live in
``app_handlers.py`` and use the core's public API (:mod:`geodistill.studio` for the models,
:mod:`geodistill.evaluation`, :mod:`geodistill.engine.jobs`, :mod:`geodistill.viz`).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys

import gradio as gr

import app_handlers as handlers
from app_handlers import MAX_UPLOAD_MB
from studio_ui.evaluate import EvaluateTab, build_evaluate_tab
from studio_ui.explore import ExploreTab, build_explore_tab, wire_explore
from studio_ui.map import MAP_CLICK_JS, MapTab, build_map_tab, map_inputs, wire_map
from studio_ui.my_area import AREA_PICK_JS, MyAreaTab, build_my_area_tab
from studio_ui.my_area_handlers import open_in_explore, start_adapt
from geodistill.errors import GeoDistillError
from studio_ui.train import TrainTab, build_train_tab

PORT_TRIES = 20  # a busy --port moves on to the next free one among this many


def build_demo() -> gr.Blocks:
    """The five-tab interface (cheap: no model is loaded until a handler needs one)."""
    choices = handlers.model_choices()
    with gr.Blocks(title="GeoDistill Studio", analytics_enabled=False) as demo:
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
            with gr.Tab("My area", id="my-area"):
                my_area = build_my_area_tab(choices)
        then_localize = wire_explore(explore, map_tab.view,
                                     map_inputs(map_tab, explore.sample_state, explore.predictions_state))
        wire_map(map_tab, explore.sample_state, explore.predictions_state)
        _wire_across_tabs(demo, train, explore, evaluate, map_tab, tabs, then_localize)
        _wire_my_area(demo, my_area, explore, train, tabs, then_localize)
        demo.load(None, None, None, js=MAP_CLICK_JS)
        demo.load(None, None, None, js=AREA_PICK_JS)
    return demo.queue(default_concurrency_limit=4)


def _wire_across_tabs(demo: gr.Blocks, train: TrainTab, explore: ExploreTab, evaluate: EvaluateTab, map_tab: MapTab,
                      tabs: gr.Tabs, then_localize) -> None:
    """A finished run becomes a model of Explore and Evaluate; Refresh, and every page load, update every list of
    runs and models; a click on the map becomes the upload's tile centre; a worst case of Evaluate opens in
    Explore."""
    train.explore_button.click(handlers.use_run_in_explore, train.run_picker,
                               [explore.model, evaluate.model, tabs], api_name=False)
    lists = [train.run_picker, explore.model, evaluate.model, train.init_checkpoint]
    gr.on([train.refresh_button.click, demo.load], handlers.refresh_lists, None, lists, api_name=False)
    map_tab.clicked.change(lambda text: text, map_tab.clicked, explore.tile_centre, api_name=False,
                           show_progress="hidden")
    then_localize(evaluate.worst.select(
        handlers.open_case, evaluate.cases,
        [explore.sample_state, explore.sample_info, explore.limited, explore.fov_deg, explore.fov_center,
         explore.model, explore.heading, tabs], api_name=False))


def _wire_my_area(demo: gr.Blocks, my_area: MyAreaTab, explore: ExploreTab, train: TrainTab, tabs: gr.Tabs,
                  then_localize) -> None:
    """A panorama of My area (chosen in its list or clicked on its map) opens in Explore; an adaptation run appears
    in the Train tab's run list; Refresh and every page load update its list of models."""
    opened = [explore.sample_state, explore.sample_info, explore.limited, explore.model, tabs]
    for event, name in ((my_area.open_button.click, my_area.entry), (my_area.pick.change, my_area.pick)):
        then_localize(event(open_in_explore, [name, my_area.context], opened, api_name=False))
    gr.on([train.refresh_button.click, demo.load], lambda: gr.update(choices=handlers.model_choices()), None,
          my_area.model, api_name=False)
    my_area.adapt_button.click(start_adapt, [my_area.context, my_area.adapt_epochs],
                               [my_area.adapt_status, train.run_picker], api_name=False)


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
    parser.add_argument("--port", type=_port, default=7860,
                        help="port to serve on, 1-65535 (default: 7860; when it is busy, the next free one)")
    parser.add_argument("--share", default="false", choices=["true", "false"],
                        help="also serve through a public Gradio share link (needs a network; default: false)")
    parser.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                        help="a server folder the dataset-root and checkpoint fields may read, besides the data, "
                             "runs and checkpoints folders and the bundled samples (repeatable)")
    return parser.parse_args(argv)


def port_is_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound now (an address in TIME_WAIT counts as free, as for the server)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(host: str, port: int, tries: int = PORT_TRIES) -> int:
    """``port`` if it is free, else the next free one (with a message); exits at once when none of them is."""
    for candidate in range(port, min(port + tries, 65536)):
        if port_is_free(host, candidate):
            if candidate != port:
                print(f"port {port} is busy; serving on {candidate} instead (choose one with --port)",
                      file=sys.stderr)
            return candidate
    print(f"error: cannot serve on {host}: ports {port}-{min(port + tries, 65536) - 1} are busy or cannot be bound; "
          "pick another with --port (or another address with --host)", file=sys.stderr)
    sys.exit(2)


def banner(host: str, port: int, share_url: str | None) -> str:
    """What the terminal shows once the app serves (Gradio's own banner would suggest ``share=True``)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    lines = [f"GeoDistill Studio: http://{shown}:{port}/"]
    if share_url:
        lines.append(f"public share link: {share_url}")
    elif host in ("127.0.0.1", "localhost", "::1"):
        lines.append("(this machine only; `--host 0.0.0.0` serves your network, `--share true` makes a public link)")
    lines.append("Ctrl+C stops the app; training runs it started go on (see the Train tab after a restart).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        handlers.allow_paths(args.allow_path)
    except GeoDistillError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    port = choose_port(args.host, args.port)
    try:
        demo = build_demo()
        _, local_url, share_url = demo.launch(
            server_name=args.host, server_port=port, share=args.share == "true", max_file_size=f"{MAX_UPLOAD_MB}mb",
            show_error=False, quiet=True, prevent_thread_lock=True)
    except OSError as error:  # taken since the check, or the address cannot be bound
        print(f"error: cannot serve on {args.host}:{port} ({str(error).split('. ')[0]}); "
              "pick another with --port or --host", file=sys.stderr)
        sys.exit(2)
    print(banner(args.host, port, share_url), flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()

"""Screenshots of the app's four tabs with the shipped models, for the README (docs/screenshots/*.png).

    python training/screenshots.py [--out docs/screenshots] [--only explore map train evaluate]

Starts the app as the browser tests do (``tests/app/watched_app.py``: ``python app.py`` with every connection to
a non-loopback address refused and logged), with the shipped checkpoints and fresh, temporary runs and data
folders, and drives Debian's Chromium through Playwright: Explore localizes the teaser's sample (the default model
and its teacher at 180°), Map shows it, Train runs the tiny recipe until it has logged a dozen steps, Evaluate
runs the default model on every bundled sample. Each picture is then shrunk with training/optimize_images.py.
Fails (exit 1) when the app reached for the network. Run by ``training/refresh_assets.py``; a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ("explore", "map", "train", "evaluate")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WATCHED_APP = ROOT / "tests" / "app" / "watched_app.py"
SAMPLE = "syn-SF-s7-w000-p02"  # the teaser's and the README example's sample (training/make_teaser.py)
TIMEOUT_MS = 300_000  # model loading, training and evaluating on a busy CPU
VIEWPORT = {"width": 1400, "height": 1000}
MAP_OBJECT_JS = ("Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])"
                 ".find(v => typeof L === 'object' && v instanceof L.Map)")  # folium names its map map_<id>


class ScreenshotError(RuntimeError):
    """Something the screenshots need is missing or the app misbehaved."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder of the PNG files")
    parser.add_argument("--only", nargs="+", default=list(SHOTS), metavar="TAB",
                        help=f"tabs to take, in this order: {' '.join(SHOTS)} (default: all)")
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints", help="checkpoints folder")
    parser.add_argument("--chromium", type=Path, default=CHROMIUM, help="Chromium executable (Debian's)")
    parser.add_argument("--no-optimize", action="store_true", help="keep the full-size 24-bit PNG files")
    args = parser.parse_args(argv)
    unknown = [name for name in args.only if name not in SHOTS]
    if unknown:
        parser.error(f"unknown tab {', '.join(unknown)}; choose from {', '.join(SHOTS)}")
    args.only = [name for name in SHOTS if name in args.only]
    return args


def check_environment(args: argparse.Namespace) -> None:
    """Refuse early (before the app starts) what would fail later."""
    if not args.chromium.is_file():
        raise ScreenshotError(f"{args.chromium}: no Chromium there (apt-get install chromium, or --chromium PATH)")
    if not (args.checkpoints / "config.json").is_file() and not any(args.checkpoints.glob("*/config.json")):
        raise ScreenshotError(f"{args.checkpoints}: no shipped checkpoint; the screenshots show the shipped models")
    if args.out.exists() and not args.out.is_dir():
        raise ScreenshotError(f"--out {args.out}: is a file, not a folder")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(checkpoints: Path, work: Path) -> tuple[subprocess.Popen, str, Path]:
    """The app on a free local port with the network watched: (process, url, network log)."""
    port, net_log, log = _free_port(), work / "net.jsonl", work / "app.log"
    env = {k: v for k, v in os.environ.items() if k not in ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_OFFLINE")}
    env.update(GEODISTILL_RUNS=str(work / "runs"), GEODISTILL_DATA=str(work / "data"),
               GEODISTILL_CHECKPOINTS=str(checkpoints.resolve()), GEODISTILL_NET_LOG=str(net_log),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])), OMP_NUM_THREADS="1")
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, str(WATCHED_APP), "--port", str(port)], cwd=ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ScreenshotError(f"the app exited with status {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "config", timeout=5):
                return process, url, net_log
        except OSError:
            time.sleep(0.5)
    process.terminate()
    raise ScreenshotError(f"the app did not serve within 300 s:\n{log.read_text()[-3000:]}")


def _localize_sample(page) -> None:
    """Pick the teaser's sample in Explore and wait for both heatmaps and the prediction summary."""
    page.get_by_role("tab", name="Explore").click()
    page.locator("#sample-picker input").click()
    page.get_by_role("option", name=re.compile(SAMPLE)).first.click()
    for element in ("#teacher-heatmap img", "#student-heatmap img", "#pano-view img"):
        page.locator(element).wait_for(state="visible")
    page.locator("#prediction-summary").filter(has_text="within 5 m").wait_for()
    page.wait_for_timeout(1500)  # the map and the other tabs' updates follow the heatmaps


def explore(page, out: Path) -> None:
    _localize_sample(page)
    page.screenshot(path=str(out / "explore.png"), full_page=True)


def map_tab(page, out: Path) -> None:
    if not page.locator("#student-heatmap img").is_visible():
        _localize_sample(page)  # the map shows the localized sample
    page.get_by_role("tab", name="Map").click()
    page.locator("iframe.geodistill-map").wait_for(state="visible")
    page.frame_locator("iframe.geodistill-map").locator("img.leaflet-image-layer").first.wait_for(state="attached")
    frame = page.locator("iframe.geodistill-map").element_handle().content_frame()
    frame.wait_for_function(f"() => {{ const m = {MAP_OBJECT_JS}; return !!m && m.getZoom() >= 15; }}",
                            timeout=30_000)  # zoomed onto the tile
    page.wait_for_timeout(2000)
    page.screenshot(path=str(out / "map.png"), full_page=True)


def train(page, out: Path) -> None:
    page.get_by_role("tab", name="Train").click()
    page.get_by_label("Run name (empty: automatic)").fill("screenshot-tiny")
    page.get_by_label("Epochs").fill("50")
    page.get_by_label("Max steps/epoch (0: all)").fill("4")
    page.locator("#start-button").click()
    progress = page.locator("#run-progress")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not re.search(r"step (\d\d+)/", progress.inner_text()):
        if progress.get_attribute("data-state") in ("failed", "cancelled") or time.monotonic() > deadline:
            raise ScreenshotError(f"the tiny training run did not get to step 10: {progress.inner_text()}\n"
                                  f"{page.locator('#run-log textarea').input_value()[-2000:]}")
        page.wait_for_timeout(500)
    page.locator("#run-curves img").wait_for(state="visible")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(out / "train.png"), full_page=True)
    page.locator("#cancel-button").click()
    page.locator("#run-progress[data-state=interrupted]").wait_for()


def evaluate(page, out: Path) -> None:
    page.get_by_role("tab", name="Evaluate").click()
    page.get_by_label("Dataset root (VIGOR layout)").fill("samples")
    page.get_by_label("At most N queries (0: all)").fill("0")
    page.locator("#evaluate-button").click()
    page.locator("#error-cdf img").wait_for(state="visible")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(out / "evaluate.png"), full_page=True)


TAKE = {"explore": explore, "map": map_tab, "train": train, "evaluate": evaluate}


def take(args: argparse.Namespace) -> list[Path]:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="geodistill-screenshots-") as folder:
        process, url, net_log = start_app(args.checkpoints, Path(folder))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(args.chromium), headless=True,
                                                     args=CHROMIUM_ARGS)
                page = browser.new_context(viewport=VIEWPORT).new_page()
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(url, wait_until="domcontentloaded")
                page.wait_for_selector("#sample-picker input")
                for name in args.only:
                    try:
                        TAKE[name](page, args.out)
                    except PlaywrightError as error:  # a timeout: the tab never showed what it should
                        raise ScreenshotError(f"{name}: {error}") from error
                    print(f"took {args.out / name}.png", flush=True)
                browser.close()
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        reached = [json.loads(line) for line in net_log.read_text().splitlines()] if net_log.is_file() else []
        if reached:
            raise ScreenshotError(f"the app reached for the network: {reached[:3]}")
    return [args.out / f"{name}.png" for name in args.only]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_environment(args)
        files = take(args)
    except ScreenshotError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not args.no_optimize:
        subprocess.run([sys.executable, str(ROOT / "training" / "optimize_images.py"), *map(str, files)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

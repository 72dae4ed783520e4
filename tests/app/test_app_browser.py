"""The app in Debian's Chromium through Playwright: explore, map, uploads, messages, training, privacy.

Every test here shares ONE app, started as ``python app.py`` (through tests/app/watched_app.py, which refuses and
logs any connection to a non-loopback address) and one browser, so the suite pays for one start-up.

Set ``GEODISTILL_SCREENSHOTS=$PWD/docs/screenshots`` to keep a screenshot of each tab there (the README's
pictures come from this test, with the shipped checkpoints when there are any, and a few more training
steps and an evaluation so the plots have something to show); otherwise the screenshots go to a temporary
folder and the app runs without checkpoints.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from geodistill.engine.jobs import JobManager
from geodistill.settings import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WATCHED_APP = Path(__file__).with_name("watched_app.py")
SAMPLES = REPO_ROOT / "assets" / "samples"
UI_TIMEOUT_MS = 120_000  # model loading and training on a busy CPU

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@dataclass
class AppServer:
    url: str
    port: int
    log: Path
    net_log: Path
    allowed: Path             # a folder allowed with --allow-path
    runs: Path
    data: Path
    process: subprocess.Popen
    browser_requests: list[str] = field(default_factory=list)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(server: AppServer, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the app exited with status {server.process.returncode}:\n{server.output()}")
        try:
            with urllib.request.urlopen(server.url + "config", timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the app did not serve within {timeout_s} s:\n{server.output()}")


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """``python app.py --port P --allow-path DIR`` with the test roots, as a user starts it (no analytics or
    offline settings inherited from the test session), the network watched."""
    base = tmp_path_factory.getbasetemp()  # the roots tests/conftest.py gives every test
    folder = tmp_path_factory.mktemp("app_server")
    checkpoints = (REPO_ROOT / "checkpoints" if os.environ.get("GEODISTILL_SCREENSHOTS")
                   else tmp_path_factory.mktemp("no_checkpoints"))
    env = {k: v for k, v in os.environ.items() if k not in ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_OFFLINE")}
    env.update(GEODISTILL_RUNS=str(base / "runs"), GEODISTILL_DATA=str(base / "data"),
               GEODISTILL_CHECKPOINTS=str(checkpoints), GEODISTILL_NET_LOG=str(folder / "net.jsonl"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1")
    allowed = folder / "allowed"
    allowed.mkdir()
    port = _free_port()
    log = folder / "app.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, str(WATCHED_APP), "--port", str(port), "--allow-path",
                                    str(allowed)], cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    server = AppServer(f"http://127.0.0.1:{port}/", port, log, folder / "net.jsonl", allowed, base / "runs",
                       base / "data", process)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        jobs = JobManager(server.runs)
        for run in jobs.list_runs():
            if run.active:
                jobs.cancel(run.name, force=True)
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser(app_server):
    playwright_api = pytest.importorskip("playwright.sync_api")
    playwright_api.expect.set_options(timeout=UI_TIMEOUT_MS)
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, app_server):
    """A fresh page of the shared app; every request it makes is logged in ``app_server.browser_requests``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.on("request", lambda request: app_server.browser_requests.append(request.url))
    page.goto(app_server.url, wait_until="domcontentloaded")
    page.wait_for_selector("#sample-picker input")
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("GEODISTILL_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _map_frame(page):
    from playwright.sync_api import Error

    for _ in range(100):
        for frame in page.frames:
            try:
                if frame != page.main_frame and frame.evaluate("() => !!document.querySelector('.leaflet-container')"):
                    return frame
            except Error:  # the frame is (re)loading
                pass
        page.wait_for_timeout(200)
    return None


def _toast(page, pattern: str):
    """The error toast whose text matches ``pattern``."""
    return page.get_by_test_id("toast-body").filter(has_text=re.compile(pattern)).first


def _run_state(page) -> str | None:
    box = page.locator("#run-progress")
    return box.get_attribute("data-state") if box.count() else None


def _wait_for_run(page, condition, timeout_s: float) -> None:
    """Wait until ``condition()`` holds, failing at once (with the run's log) if the run fails."""
    for _ in range(int(timeout_s * 2)):
        if _run_state(page) in ("failed", "cancelled"):
            pytest.fail(f"the training run {_run_state(page)}:\n{page.locator('#run-log textarea').input_value()}")
        if condition():
            return
        page.wait_for_timeout(500)
    pytest.fail(f"the training run did not get there in {timeout_s} s: {page.locator('#run-progress').inner_text()}")


def _open_upload(page):
    page.get_by_text("Upload", exact=True).click()


def _upload(page, pano: Path | None, sat: Path | None, **fields: str):
    """Upload files (None: keep the one there), fill the georeference fields (missing: empty) and load."""
    from playwright.sync_api import expect

    for widget, path in (("#pano-upload", pano), ("#sat-upload", sat)):
        if path is not None:
            chooser = page.locator(f"{widget} input[type=file]")
            for _ in range(10):  # a shown file hides the chooser: clear it (the file's Clear is the last one)
                if chooser.count():
                    break
                page.locator(f"{widget} button[aria-label=Clear]").last.click()
                page.wait_for_timeout(300)
            chooser.set_input_files(str(path))
            expect(page.locator(widget)).to_contain_text(path.name)
    for label in ("Tile centre lat", "Tile centre lon", "Metres per pixel", "or zoom"):
        page.get_by_label(label, exact=True).fill(fields.get(label, ""))
    page.get_by_label("upload", exact=True).check()
    page.locator("#load-button").click()


def test_explore_and_map_a_bundled_sample(page, shots):
    from playwright.sync_api import expect

    # Explore: pick a bundled sample; both heatmaps appear, the student sees 180 degrees
    page.locator("#sample-picker input").click()
    page.locator("[role=option]").first.click()
    for element in ("#teacher-heatmap img", "#student-heatmap img", "#difference-heatmap img", "#bev-view img",
                    "#pano-view img"):
        expect(page.locator(element)).to_be_visible()
    summary = page.locator("#prediction-summary")
    expect(summary).to_contain_text("180°")

    # toggling the FoV gives the student the whole panorama, and back
    page.locator("#fov-toggle input[type=checkbox]").click()
    expect(summary).not_to_contain_text("180°")
    page.locator("#fov-toggle input[type=checkbox]").click()
    expect(summary).to_contain_text("180°")
    page.screenshot(path=str(shots / "explore.png"), full_page=True)

    # Map: Leaflet runs inside the iframe, with the tile and heatmap overlays and the markers
    page.get_by_role("tab", name="Map").click()
    expect(page.locator("iframe.geodistill-map")).to_be_visible()
    frame = _map_frame(page)
    assert frame is not None, "no Leaflet map inside the iframe"
    assert frame.evaluate("() => typeof L === 'object' && L.version") == "1.9.4"
    expect(frame.locator("img.leaflet-image-layer")).to_have_count(2)
    assert frame.locator("path.leaflet-interactive").count() >= 2
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "map.png"), full_page=True)


def test_uploads_without_georeference_and_bad_files(page, bad_image):
    """Empty lat/lon mean no georeference (not Null Island); a missing field is named; m/px is range-checked;
    an upload's error names the file, never the server's temp folder."""
    from playwright.sync_api import expect

    pano = next((SAMPLES / "Chicago" / "panorama").glob("*.jpg"))
    sat = next((SAMPLES / "Chicago" / "satellite").glob("*.png"))
    _open_upload(page)
    for label in ("Tile centre lat", "Tile centre lon", "Metres per pixel", "or zoom"):
        expect(page.get_by_label(label, exact=True)).to_have_value("")  # nothing pre-filled (was 0: Null Island)

    _upload(page, pano, sat, **{"Metres per pixel": "0.1"})
    info = page.get_by_text("No georeference: the prediction is given in pixels and metres only")
    expect(info).to_be_visible()
    expect(page.locator("#prediction-summary")).to_contain_text("pixel")
    page.get_by_role("tab", name="Map").click()
    expect(page.locator("#map-view")).to_contain_text("no georeference")
    page.get_by_role("tab", name="Explore").click()

    _upload(page, None, None, **{"Tile centre lat": "41.8", "Metres per pixel": "0.1"})
    expect(_toast(page, "Tile centre lon is empty")).to_be_visible()
    _upload(page, None, None, **{"Metres per pixel": "1e-9"})
    expect(_toast(page, "outside the plausible range 0.01-20 m/px")).to_be_visible()

    _upload(page, Path(bad_image), Path(bad_image), **{"Metres per pixel": "0.1"})
    message = _toast(page, "not_really.png.*not a readable image")
    expect(message).to_be_visible()
    expect(message).not_to_contain_text("gradio/")
    assert "/tmp" not in message.inner_text()


def test_evaluate_messages_are_text_and_paths_stay_in_the_allowed_folders(page, app_server):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Evaluate").click()
    root = page.get_by_label("Dataset root (VIGOR layout)")
    expect(root).to_have_value("samples")  # the bundled samples, by their relative name, not a server path
    for forbidden in ("/etc", "../../..", str(REPO_ROOT)):
        root.fill(forbidden)
        page.locator("#evaluate-button").click()
        refusal = _toast(page, "is outside the folders this app may use")
        expect(refusal).to_contain_text("--allow-path")
        page.get_by_test_id("toast-close").first.click()
    (app_server.allowed / "empty").mkdir(exist_ok=True)
    root.fill(str(app_server.allowed / "empty"))  # allowed, but no VIGOR layout: the message names <City>/
    page.locator("#evaluate-button").click()
    expect(_toast(page, "<City>/")).to_be_visible()


def test_train_refuse_cancel_early_resume_and_follow(page, app_server, shots):
    """A refused Start changes nothing; a Cancel in the first seconds (data generation) and one during a
    Resume's setup both end the run interrupted; the run then trains and reports progress."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Train").click()
    expect(page.locator("#recipe-picker input")).to_have_value("tiny.yaml")
    page.get_by_label("Run name (empty: automatic)").fill("browser-tiny")
    page.get_by_label("Epochs").fill("50")
    page.get_by_label("Max steps/epoch (0: all)").fill("4")
    page.locator("#start-button").click()
    progress = page.locator("#run-progress")
    expect(progress).to_have_attribute("data-state", "running")
    config = app_server.runs / "browser-tiny" / "config.yaml"
    saved = config.read_bytes()
    assert yaml.safe_load(saved)["train"]["epochs"] == 50

    page.get_by_label("Epochs").fill("7")
    page.locator("#start-button").click()
    expect(_toast(page, "already running")).to_be_visible()
    assert config.read_bytes() == saved  # the refused start left the running run's config alone

    page.locator("#cancel-button").click()  # within the first seconds: data generation, model building
    expect(progress).to_have_attribute("data-state", "interrupted")
    expect(page.locator("#run-status")).to_contain_text("interrupted")

    page.locator("#resume-button").click()
    page.wait_for_timeout(1000)
    page.locator("#cancel-button").click()  # during the resume's setup
    expect(progress).to_have_attribute("data-state", "interrupted")

    page.locator("#resume-button").click()
    _wait_for_run(page, lambda: re.search(r"step [1-9]\d*/\d+", progress.inner_text()), timeout_s=400)
    expect(page.locator("#run-curves img")).to_be_visible()
    log = page.locator("#run-log textarea").input_value()
    assert str(app_server.runs) not in log and "runs/browser-tiny" in log  # paths relative to the runs root
    if os.environ.get("GEODISTILL_SCREENSHOTS"):
        _wait_for_run(page, lambda: re.search(r"step (\d\d+)/", progress.inner_text()), timeout_s=400)
        page.wait_for_timeout(1500)
    page.screenshot(path=str(shots / "train.png"), full_page=True)
    page.locator("#cancel-button").click()
    expect(progress).to_have_attribute("data-state", "interrupted")

    page.get_by_role("tab", name="Evaluate").click()
    expect(page.locator("#evaluate-button")).to_be_visible()
    if os.environ.get("GEODISTILL_SCREENSHOTS"):
        page.get_by_label("Dataset root (VIGOR layout)").fill("samples")
        page.get_by_label("At most N queries (0: all)").fill("6")
        page.locator("#evaluate-button").click()
        expect(page.locator("#error-cdf img")).to_be_visible(timeout=300_000)
        page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "evaluate.png"), full_page=True)


def test_nothing_left_this_machine_and_the_banner_is_ours(app_server):
    """After the tests above (start-up, localizing, the map, uploads, training): no connection from the server or
    the browser to any non-loopback address, analytics off, and the terminal names our --share."""
    assert app_server.browser_requests, "the browser tests above made no request"
    hosts = {urlparse(url).hostname for url in app_server.browser_requests if urlparse(url).scheme in ("http", "https")}
    assert hosts == {"127.0.0.1"}, [u for u in app_server.browser_requests if urlparse(u).hostname != "127.0.0.1"]
    attempts = app_server.net_log.read_text().splitlines() if app_server.net_log.exists() else []
    assert attempts == [], f"the server tried to reach the network: {attempts}"
    with urllib.request.urlopen(app_server.url + "config", timeout=10) as response:
        assert json.load(response)["analytics_enabled"] is False
    output = app_server.output()
    assert f"GeoDistill Studio: http://127.0.0.1:{app_server.port}/" in output
    assert "--share true" in output and "share=True" not in output

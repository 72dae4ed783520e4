"""The app in Debian's Chromium through Playwright: explore, map, a bad upload, a training job.

Set ``GEODISTILL_SCREENSHOTS=$PWD/docs/screenshots`` to keep a screenshot of each tab there (the README's
pictures come from this test, with the shipped checkpoints when there are any, and a few more training
steps and an evaluation so the plots have something to show); otherwise the screenshots go to the test's
temporary folder and the app runs without checkpoints.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture
def app_url(free_port, monkeypatch):
    if os.environ.get("GEODISTILL_SCREENSHOTS"):  # pictures for the README show the shipped models, if any
        from geodistill.settings import REPO_ROOT

        monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(REPO_ROOT / "checkpoints"))
    import app
    import app_handlers

    demo = app.build_demo()
    port = free_port
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        for run in app_handlers.JOBS.list_runs():
            if run.active:
                app_handlers.JOBS.cancel(run.name, force=True)
        demo.close()


@pytest.fixture
def page(app_url):
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(app_url, wait_until="domcontentloaded")
            yield page
        finally:
            browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("GEODISTILL_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _map_frame(page):
    for frame in page.frames:
        if frame != page.main_frame and frame.evaluate("() => !!document.querySelector('.leaflet-container')"):
            return frame
    return None


def _wait_for_run(page, condition, timeout_s: float) -> None:
    """Wait until ``condition()`` holds, failing at once (with the run's log) if the run fails."""
    for _ in range(int(timeout_s * 2)):
        box = page.locator("#run-progress")
        state = box.get_attribute("data-state") if box.count() else None
        if state in ("failed", "cancelled"):
            pytest.fail(f"the training run {state}:\n{page.locator('#run-log textarea').input_value()}")
        if condition():
            return
        page.wait_for_timeout(500)
    pytest.fail(f"the training run did not get there in {timeout_s} s: {page.locator('#run-progress').inner_text()}")


def test_explore_map_upload_and_train(page, shots, bad_image):
    from playwright.sync_api import expect

    # Explore: pick a bundled sample; both heatmaps appear, the student sees 180 degrees
    page.wait_for_selector("#sample-picker input")
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
    page.wait_for_function("() => true")
    frame = None
    for _ in range(50):
        frame = _map_frame(page)
        if frame is not None:
            break
        page.wait_for_timeout(200)
    assert frame is not None, "no Leaflet map inside the iframe"
    assert frame.evaluate("() => typeof L === 'object' && L.version") == "1.9.4"
    assert frame.locator("img.leaflet-image-layer").count() == 2
    assert frame.locator("path.leaflet-interactive").count() >= 2
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "map.png"), full_page=True)

    # Explore again: a bad upload is refused with a message
    page.get_by_role("tab", name="Explore").click()
    page.get_by_text("Upload", exact=True).click()
    page.locator("#pano-upload input[type=file]").set_input_files(bad_image)
    page.locator("#sat-upload input[type=file]").set_input_files(bad_image)
    expect(page.locator("#sat-upload")).to_contain_text("not_really.png")
    page.get_by_label("Tile centre lat").fill("40.7")
    page.get_by_label("Tile centre lon").fill("-74.0")
    page.get_by_label("Metres per pixel").fill("0.1")
    page.get_by_label("upload", exact=True).check()
    page.locator("#load-button").click()
    expect(page.get_by_text(re.compile("not_really.png.*not a readable image")).first).to_be_visible()

    # Train: a tiny job starts, reports progress, and is cancelled into an interrupted checkpoint
    page.get_by_role("tab", name="Train").click()
    expect(page.locator("#recipe-picker input")).to_have_value("tiny.yaml")
    page.get_by_label("Run name (empty: automatic)").fill("browser-tiny")
    page.get_by_label("Epochs").fill("50")
    page.get_by_label("Max steps/epoch (0: all)").fill("4")
    page.locator("#start-button").click()
    progress = page.locator("#run-progress")
    _wait_for_run(page, lambda: re.search(r"step [1-9]\d*/\d+", progress.inner_text()), timeout_s=400)
    expect(page.locator("#run-curves img")).to_be_visible()
    if os.environ.get("GEODISTILL_SCREENSHOTS"):
        _wait_for_run(page, lambda: re.search(r"step (\d\d+)/", progress.inner_text()), timeout_s=400)
        page.wait_for_timeout(1500)
    page.screenshot(path=str(shots / "train.png"), full_page=True)
    page.locator("#cancel-button").click()
    expect(progress).to_have_attribute("data-state", "interrupted", timeout=120_000)
    expect(page.locator("#run-status")).to_contain_text("interrupted")

    # Evaluate: the tab is there and its controls are ready
    page.get_by_role("tab", name="Evaluate").click()
    expect(page.locator("#evaluate-button")).to_be_visible()
    if os.environ.get("GEODISTILL_SCREENSHOTS"):
        page.get_by_label("At most N queries (0: all)").fill("6")
        page.locator("#evaluate-button").click()
        expect(page.locator("#error-cdf img")).to_be_visible(timeout=300_000)
        page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "evaluate.png"), full_page=True)

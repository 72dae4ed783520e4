"""The app in Debian's Chromium through Playwright: explore, map, uploads, messages, training, privacy.

Every test here shares ONE app, started as ``python app.py`` (through tests/app/watched_app.py, which refuses and
logs any connection to a non-loopback address) and one browser (``tests/app/conftest.py``), so the suite pays for
one start-up; each test gets a fresh page.

Set ``GEODISTILL_SCREENSHOTS=$PWD/docs/screenshots`` to keep a screenshot of each tab there (the README's
pictures come from this test, with the shipped checkpoints when there are any, and a few more training
steps and an evaluation so the plots have something to show); otherwise the screenshots go to a temporary
folder and the app runs without checkpoints.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from geodistill.settings import REPO_ROOT

SAMPLES = REPO_ROOT / "assets" / "samples"
MAP_OBJECT_JS = "Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k]).find(v => v instanceof L.Map)"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
]


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
    pytest.fail("no Leaflet map inside the iframe")


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
            expect(page.locator(widget)).to_contain_text(path.stem)  # the name is shown as "stem .suffix"
    for field_id in ("tile-centre", "tile-mpp", "tile-zoom"):
        page.locator(f"#{field_id} textarea, #{field_id} input").first.fill(fields.get(field_id, ""))
    expect(page.get_by_label("upload", exact=True)).to_be_checked()  # uploading chose the upload as the source
    page.locator("#load-button").click()


def _no_error_toast(page, wait_ms: int = 1500) -> None:
    page.wait_for_timeout(wait_ms)
    errors = page.locator(".toast-body.error")
    assert errors.count() == 0, f"an error popped up: {errors.first.inner_text()}"


def _pick_first_sample(page):
    page.locator("#sample-picker input").click()
    page.locator("[role=option]").first.click()


def _mutations_of(page, selector: str, wait_ms: int) -> int:
    """How many DOM changes ``selector``'s element sees in ``wait_ms`` (a redraw of the same text counts)."""
    return page.evaluate("""([selector, wait]) => new Promise(resolve => {
        let count = 0;
        const observer = new MutationObserver(records => { count += records.length; });
        observer.observe(document.querySelector(selector), {subtree: true, childList: true, characterData: true,
                                                           attributes: true});
        setTimeout(() => { observer.disconnect(); resolve(count); }, wait);
    })""", [selector, wait_ms])


def test_explore_and_map(page, shots):
    from playwright.sync_api import expect

    # before any sample, moving a control is not an error
    page.locator("#fov-toggle input[type=checkbox]").click()
    _no_error_toast(page)
    page.locator("#fov-toggle input[type=checkbox]").click()
    _no_error_toast(page, 500)

    # a bundled sample: both heatmaps appear, large, with colour bars; the student sees 180 degrees
    _pick_first_sample(page)
    for element in ("#teacher-heatmap img", "#student-heatmap img", "#difference-heatmap img", "#bev-view img",
                    "#pano-view img"):
        expect(page.locator(element)).to_be_visible()
    summary = page.locator("#prediction-summary")
    expect(summary).to_contain_text("180°")
    for element in ("#teacher-heatmap img", "#student-heatmap img", "#difference-heatmap img"):
        drawn_large = f"() => (document.querySelector('{element}')?.getBoundingClientRect().width ?? 0) >= 400"
        page.wait_for_function(drawn_large, timeout=10_000)  # fails with a timeout when drawn too small
    label = page.locator("#difference-heatmap [data-testid=block-label], #difference-heatmap label").first
    assert label.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the difference map's title is clipped"
    # the untrained model has no orientation estimate: the heading is not presented as known
    expect(summary).to_contain_text("not estimated")
    expect(summary).not_to_contain_text("(known)")
    expect(summary).to_contain_text("within 5 m")  # confidence in words, and what it means

    # toggling the FoV gives the student the whole panorama, and back
    page.locator("#fov-toggle input[type=checkbox]").click()
    expect(summary).not_to_contain_text("180°")
    page.locator("#fov-toggle input[type=checkbox]").click()
    expect(summary).to_contain_text("180°")
    page.screenshot(path=str(shots / "explore.png"), full_page=True)

    # export: a JSON and a GeoJSON file to download
    page.locator("#export-button").click()
    links = page.locator("#export-files a[download]")
    expect(links).to_have_count(2)
    with page.expect_download() as download:
        links.nth(1).click()
    geojson = json.loads(Path(download.value.path()).read_text())
    assert geojson["type"] == "FeatureCollection" and geojson["features"][0]["properties"]["kind"] == "tile"

    # Map: Leaflet in the iframe with the tile and one heatmap, markers with popups, a legend
    page.get_by_role("tab", name="Map").click()
    expect(page.locator("iframe.geodistill-map")).to_be_visible()
    frame = _map_frame(page)
    frame.wait_for_function("() => typeof L === 'object'", timeout=10_000)
    assert frame.evaluate("() => L.version") == "1.9.4"
    expect(frame.locator("img.leaflet-image-layer")).to_have_count(2)
    expect(frame.locator("path.leaflet-interactive").nth(1)).to_be_attached()
    expect(frame.locator(".geodistill-legend")).to_contain_text("student prediction")
    # switching the heatmap keeps the zoom and the other toggles (it happens inside Leaflet)
    zoom = frame.evaluate(f"() => {{ const m = {MAP_OBJECT_JS}; m.setZoom(m.getZoom() + 1, {{animate: false}}); "
                          "return m.getZoom(); }")
    frame.get_by_label("satellite tile").uncheck()
    heatmap = frame.locator(".leaflet-heatmaps-pane img")
    student_src = heatmap.get_attribute("src")
    frame.get_by_label("teacher heatmap").check()
    page.wait_for_timeout(300)
    assert frame.evaluate(f"() => {MAP_OBJECT_JS}.getZoom()") == zoom
    assert not frame.get_by_label("satellite tile").is_checked()
    assert heatmap.count() == 1 and heatmap.get_attribute("src") != student_src
    frame.get_by_label("satellite tile").check()
    # a click on the student's marker opens its popup: error, heading, confidence
    point = frame.evaluate(f"""() => {{
        const m = {MAP_OBJECT_JS};
        let marker = null;
        m.eachLayer(l => {{ if (l instanceof L.CircleMarker && l.getPopup() &&
                               l.getPopup().getContent().includes('student prediction')) marker = l; }});
        const p = m.latLngToContainerPoint(marker.getLatLng());
        return [p.x, p.y];
    }}""")
    box = page.locator("iframe.geodistill-map").bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    popup = frame.locator(".leaflet-popup-content")
    expect(popup).to_contain_text("error")
    expect(popup).to_contain_text("heading")
    expect(popup).to_contain_text("confidence")
    page.screenshot(path=str(shots / "map.png"), full_page=True)
    # a click on the map becomes the tile centre of an upload
    page.mouse.click(box["x"] + 60, box["y"] + box["height"] - 60)
    clicked = page.locator("#map-click textarea, #map-click input").first
    expect(clicked).to_have_value(re.compile(r"^-?\d+\.\d{7}, -?\d+\.\d{7}$"))
    page.get_by_role("tab", name="Explore").click()
    page.get_by_text("Upload", exact=True).click()
    expect(page.locator("#tile-centre textarea, #tile-centre input").first).to_have_value(clicked.input_value())


def test_uploads_without_georeference_and_bad_files(page, bad_image):
    """Empty lat/lon mean no georeference (not Null Island); a missing field is named; m/px is range-checked;
    an upload's error names the file, never the server's temp folder."""
    from playwright.sync_api import expect

    pano = next((SAMPLES / "Chicago" / "panorama").glob("*.jpg"))
    sat = next((SAMPLES / "Chicago" / "satellite").glob("*.png"))
    _open_upload(page)
    for field_id in ("tile-centre", "tile-mpp", "tile-zoom"):  # nothing pre-filled (was 0: Null Island)
        expect(page.locator(f"#{field_id} textarea, #{field_id} input").first).to_have_value("")

    _upload(page, pano, sat, **{"tile-mpp": "0,1"})  # a decimal comma
    info = page.get_by_text("No georeference: the prediction is given in pixels and metres only")
    expect(info).to_be_visible()
    expect(page.locator("#prediction-summary")).to_contain_text("pixel")
    page.get_by_role("tab", name="Map").click()
    expect(page.locator("#map-view")).to_contain_text("no georeference")
    page.get_by_role("tab", name="Explore").click()

    _upload(page, None, None, **{"tile-centre": "41,8", "tile-mpp": "0.1"})  # one number, or two?
    expect(_toast(page, "one number with a decimal comma, or two numbers")).to_be_visible()
    _upload(page, None, None, **{"tile-mpp": "1e-9"})
    expect(_toast(page, "outside the plausible range 0.01-20 m/px")).to_be_visible()

    _upload(page, Path(bad_image), Path(bad_image), **{"tile-mpp": "0.1"})
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
    log_box = page.locator("#run-log textarea")
    _wait_for_run(page, lambda: log_box.evaluate("e => e.scrollHeight > e.clientHeight + 20"), timeout_s=400)
    at_bottom = "e => e.scrollTop + e.clientHeight >= e.scrollHeight - 4"
    for _ in range(40):  # it follows the newest line; under load a new line may land between a scroll and a look
        if log_box.evaluate(at_bottom):
            break
        page.wait_for_timeout(250)
    assert log_box.evaluate(at_bottom), "the log shows old lines"
    log = page.locator("#run-log textarea").input_value()
    assert str(app_server.runs) not in log and "runs/browser-tiny" in log  # paths relative to the runs root
    if os.environ.get("GEODISTILL_SCREENSHOTS"):
        _wait_for_run(page, lambda: re.search(r"step (\d\d+)/", progress.inner_text()), timeout_s=400)
        page.wait_for_timeout(1500)
    page.screenshot(path=str(shots / "train.png"), full_page=True)
    page.locator("#cancel-button").click()
    expect(progress).to_have_attribute("data-state", "interrupted")
    assert _mutations_of(page, "#run-status", 3000) == 0, "the status line is redrawn although nothing changed"

    # a reloaded page lists the run without pressing Refresh
    page.goto(app_server.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Train").click()
    page.locator("#run-picker input").click()
    expect(page.get_by_role("option", name="browser-tiny")).to_be_visible()
    page.keyboard.press("Escape")

    page.get_by_role("tab", name="Evaluate").click()
    expect(page.locator("#evaluate-button")).to_be_visible()
    if os.environ.get("GEODISTILL_SCREENSHOTS"):
        page.get_by_label("Dataset root (VIGOR layout)").fill("samples")
        page.get_by_label("At most N queries (0: all)").fill("6")
        page.locator("#evaluate-button").click()
        expect(page.locator("#error-cdf img")).to_be_visible(timeout=300_000)
        page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "evaluate.png"), full_page=True)


def test_evaluate_heading_setting_cases_and_csv(page, shots):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Evaluate").click()
    expect(page.locator("#evaluate-heading")).to_contain_text("north-aligned")
    page.get_by_label("At most N queries (0: all)").fill("2")
    page.locator("#evaluate-button").click()
    expect(page.locator("#error-cdf img")).to_be_visible(timeout=300_000)
    captions = page.locator("#worst-cases .caption-label, #worst-cases figcaption")
    expect(captions.first).to_be_visible()
    caption = captions.first
    assert re.match(r"\d+\.\d m · ", caption.inner_text()), caption.inner_text()
    with page.expect_download() as download:
        page.locator("#per-sample-csv a[download]").first.click()
    assert "u_pred_file_px" in Path(download.value.path()).read_text().splitlines()[0]
    page.screenshot(path=str(shots / "evaluate.png"), full_page=True)
    # a worst case opens in Explore
    page.locator("#worst-cases button img, #worst-cases .thumbnail-item").first.click()
    expect(page.get_by_text("Worst case from Evaluate")).to_be_visible()
    expect(page.locator("#student-heatmap img")).to_be_visible()


def test_my_area_maps_the_refined_positions_offers_the_downloads_and_opens_one_in_explore(page, app_server, shots):
    from playwright.sync_api import expect

    from geodistill.area.bench import write_bench_area

    write_bench_area(app_server.allowed / "area", 3, seed=4, ortho_px=900, pano_size=(256, 128), spread_m=20.0)
    page.get_by_role("tab", name="My area").click()
    page.locator("#area-ortho textarea").fill(str(app_server.allowed / "area" / "area.tif"))
    page.locator("#area-panos textarea").fill(str(app_server.allowed / "area" / "panos"))
    page.locator("#area-run").click()
    expect(page.locator('#area-progress[data-state="done"]')).to_contain_text("3 refined", timeout=300_000)
    frame = _map_frame(page)
    assert frame.locator("path.area-line").count() == 3                      # a line per refined panorama
    assert "confidence" in frame.locator(".geodistill-legend").inner_text()
    links = page.locator("#area-downloads a[download]")
    expect(links).to_have_count(2)
    with page.expect_download() as download:
        links.first.click()
    features = json.loads(Path(download.value.path()).read_text())["features"]
    assert sorted(f["geometry"]["type"] for f in features) == ["LineString"] * 3
    with page.expect_download() as download:
        links.last.click()
    assert Path(download.value.path()).read_text().startswith("name,status,reason,prior_lat")
    page.screenshot(path=str(shots / "my_area.png"), full_page=True)
    frame.locator("path.area-point").first.dispatch_event("click")          # a panorama's circle
    expect(page.get_by_text("My area: ")).to_be_visible()                     # opened in Explore
    expect(page.locator("#student-heatmap img")).to_be_visible()


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

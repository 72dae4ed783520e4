"""Fixtures of the app tests: no shipped checkpoints (the app's fallback model), a free local port, and ONE app
for the whole session, started as ``python app.py`` (through tests/app/watched_app.py, which refuses and logs any
connection to a non-loopback address), with one browser: every browser test and the gradio_client test use them,
so the suite pays for one start-up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from geodistill.engine.jobs import JobManager
from geodistill.settings import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WATCHED_APP = Path(__file__).with_name("watched_app.py")
UI_TIMEOUT_MS = 120_000  # model loading and training on a busy CPU


@pytest.fixture(autouse=True)
def _no_checkpoints(tmp_path_factory, monkeypatch):
    """The tests run the app as on a fresh clone: an empty checkpoints folder."""
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(tmp_path_factory.mktemp("checkpoints")))


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    return _free_port()


@pytest.fixture
def bad_image(tmp_path):
    path = tmp_path / "not_really.png"
    path.write_text("this is text, not a PNG")
    return str(path)


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


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def browser(app_server):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
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



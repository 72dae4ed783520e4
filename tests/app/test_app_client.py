"""A launched app answers a gradio_client: load a bundled sample, localize it, draw it, map it."""

import html
import re

import pytest
from gradio_client import Client

import app_handlers as handlers


@pytest.fixture
def client(app_server):
    """A client of the session's one app (tests/app/conftest.py)."""
    return Client(app_server.url, verbose=False)


def test_client_explores_a_bundled_sample(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    expected = {"/load_sample", "/localize", "/render", "/map", "/start_training", "/cancel_run", "/evaluate"}
    assert expected <= set(endpoints)
    name = handlers._sample_names()[0]
    info, source = client.predict(name, api_name="/load_sample")
    assert name in info and source == "bundled sample"
    client.predict(handlers.UNTRAINED, True, 120, -90, "aligned", api_name="/localize")  # session state keeps the predictions
    *images, summary = client.predict(0.6, True, api_name="/render")
    assert len(images) == 5 and all(path.endswith(".webp") for path in images)
    assert "120°" in summary and "360°" in summary   # the student's window and the teacher's full view
    page = html.unescape(client.predict(False, api_name="/map"))
    assert "L.imageOverlay(" in page and not re.search(r"<script[^>]+src=", page)


def test_client_sees_errors_as_messages(client):
    client.predict(handlers.UNTRAINED, True, 180, 0, "45", api_name="/localize")  # no sample yet: not an error
    with pytest.raises(Exception, match="choose a run to cancel"):
        client.predict("", api_name="/cancel_run")

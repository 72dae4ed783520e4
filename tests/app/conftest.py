"""Fixtures of the app tests: no shipped checkpoints (the app's fallback model), a free local port."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture(autouse=True)
def _no_checkpoints(tmp_path_factory, monkeypatch):
    """The tests run the app as on a fresh clone: an empty checkpoints folder."""
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(tmp_path_factory.mktemp("checkpoints")))


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def bad_image(tmp_path):
    path = tmp_path / "not_really.png"
    path.write_text("this is text, not a PNG")
    return str(path)
